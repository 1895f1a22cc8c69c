// Small progressive enhancements; every page works without them.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // A form refused with errors: take keyboard and screen reader focus to the summary.
  const summary = document.querySelector(".error-summary");
  if (summary) {
    summary.focus();
  }

  // The credential form: show only the secret field that fits the chosen kind.
  for (const select of document.querySelectorAll("select[data-kind-switch]")) {
    const form = select.form;
    const update = () => {
      for (const field of form.querySelectorAll("[data-kind]")) {
        field.hidden = field.dataset.kind !== select.value;
      }
    };
    select.addEventListener("change", update);
    update();
  }

  // A secret reference: the typed $env/$file field shows only when "other" is chosen.
  for (const select of document.querySelectorAll("select[data-reference]")) {
    const typed = document.getElementById(select.dataset.reference);
    const update = () => {
      typed.hidden = select.value !== "other";
    };
    select.addEventListener("change", update);
    update();
  }

  // Copy buttons: data-copy names the id of the input to copy.
  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.addEventListener("click", async () => {
      const input = document.getElementById(button.dataset.copy);
      input.select();
      try {
        await navigator.clipboard.writeText(input.value);
        button.textContent = "Copied";
      } catch {
        button.textContent = "Press Ctrl+C";
      }
    });
  }
});
