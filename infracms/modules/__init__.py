"""Built-in modules, one folder each (module.py; settings.py and offering.py where they grow;
role/), registered like third-party ones."""

BUILTIN_MODULES = (
    "infracms.modules.base.module",
    "infracms.modules.users.module",
    "infracms.modules.ssh_hardening.module",
    "infracms.modules.firewall.module",
    "infracms.modules.nginx_site.module",
    "infracms.modules.postgresql.module",
    "infracms.modules.backup.module",
    "infracms.modules.wireguard.module",
    "infracms.modules.calendars.module",
)
