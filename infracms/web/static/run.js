// The live view of a run: its events as they come, from the API's server-sent events.
// Loaded only on the latest page of a run that has not ended; the page works without it.
"use strict";

(() => {
  const ANSI = /\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07/g;
  const CONTROL = /[\x00-\x08\x0b-\x1f\x7f]/g;

  const plain = (text) => text.replace(ANSI, "").replace(CONTROL, "").trimEnd();

  // One event as the server renders it (templates/run.html): number, status, text.
  const line = (event) => {
    const item = document.createElement("li");
    item.className = `line line-${event.status || "info"} is-new`;
    item.dataset.seq = event.seq;
    const seq = document.createElement("span");
    seq.className = "line-seq";
    seq.setAttribute("aria-hidden", "true");
    seq.textContent = event.seq;
    item.append(seq);
    if (event.status) {
      const status = document.createElement("span");
      status.className = "line-status";
      status.textContent = event.status;
      item.append(status);
    }
    const text = document.createElement("pre");
    // The HTML parser drops a newline right after <pre> (ansible starts PLAY and TASK
    // lines with one): drop it here too, or a live line's text starts a row down.
    text.textContent = plain(event.stdout || "").replace(/^\n/, "") || event.task || "";
    item.append(text);
    return item;
  };

  const follow = (output) => {
    const status = document.getElementById("live-status");
    const empty = document.getElementById("output-empty");
    const host = output.dataset.host;
    const keep = Number(output.dataset.keep) || 1000;
    let after = Number(output.dataset.after) || 0;
    const source = new EventSource(output.dataset.stream);

    source.addEventListener("events", (message) => {
      const atEnd = output.scrollHeight - output.scrollTop - output.clientHeight < 40;
      const fresh = JSON.parse(message.data).filter(
        (event) => event.seq > after && (!host || event.host === host),
      );
      for (const event of fresh) {
        after = Math.max(after, event.seq);
        if (event.stdout || event.status) {
          output.append(line(event));
        }
      }
      while (output.children.length > keep) {
        output.firstElementChild.remove();
      }
      if (empty && output.children.length) {
        empty.hidden = true;
      }
      if (atEnd) {
        output.scrollTop = output.scrollHeight;
      }
      const events = `${after} event${after === 1 ? "" : "s"}`;
      if (status) {
        status.textContent = `Following the run live… ${events} so far.`;
      }
      const count = document.getElementById("event-count");
      if (count) {
        count.textContent = events;
      }
      // Output flows: the run has started, whatever the page said when it was loaded.
      const runStatus = document.getElementById("run-status");
      if (runStatus && fresh.length && runStatus.classList.contains("status-queued")) {
        runStatus.textContent = "running";
        runStatus.className = "status status-running";
      }
    });

    source.addEventListener("end", () => {
      source.close();
      if (status) {
        status.textContent = "The run has ended. Loading its results…";
      }
      window.location.reload();
    });

    source.addEventListener("error", () => {
      if (source.readyState === EventSource.CLOSED && status) {
        status.textContent = "The live view stopped. Reload the page to see the latest output.";
      }
    });
  };

  document.addEventListener("DOMContentLoaded", () => {
    const output = document.querySelector("ol.output[data-stream]");
    if (output) {
      output.scrollTop = output.scrollHeight;
      follow(output);
    }
  });
})();
