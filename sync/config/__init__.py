"""Settings: the TOML configuration, parsed and validated once at start-up.

``load_settings`` reads the file, checks every key and reports *all* problems
together, each naming its key (``[billing] markup_percent: expected a decimal
string like "10", got 10.5``). The result is a tree of frozen models; nothing
below the entry points reads the environment or the file again. Secrets come
only from the environment variable the file names, and are held as
``SecretStr`` so they never show in a repr or a log line.

* ``loading`` — ``load_settings``, ``resolve_config_path`` and the root ``Settings``;
* the sections: ``access`` (``[partner_center]``, ``[database]``, ``[schedule]``),
  ``finance`` (``[payments]``, ``[billing]``, ``[collections]``), ``output``
  (``[notifications]``, ``[reports]``, ``[statements]``);
* ``values`` — what a key may hold and in which range (money, URLs, paths, ports…).

Where each Microsoft cloud lives is the connector's knowledge
(``connectors.partner_center.options.CLOUDS``); ``cloud = "usgov"`` picks a preset there.
"""

from connectors.partner_center.options import CLOUDS
from sync.config.access import DatabaseSettings, PartnerCenterSettings, ScheduleSettings
from sync.config.finance import (
    BillingOverride,
    BillingSettings,
    CollectionOverride,
    CollectionsSettings,
    CollectionStage,
    NamedPolicy,
    PaymentColumns,
    PaymentsSettings,
)
from sync.config.loading import (
    CONFIG_ENV,
    DEFAULT_CONFIG_NAME,
    Settings,
    load_settings,
    resolve_config_path,
)
from sync.config.output import (
    NotificationsSettings,
    ReportsSettings,
    SmtpSettings,
    StatementsSettings,
)

__all__ = [
    "CLOUDS",
    "CONFIG_ENV",
    "DEFAULT_CONFIG_NAME",
    "BillingOverride",
    "BillingSettings",
    "CollectionOverride",
    "CollectionStage",
    "CollectionsSettings",
    "DatabaseSettings",
    "NamedPolicy",
    "NotificationsSettings",
    "PartnerCenterSettings",
    "PaymentColumns",
    "PaymentsSettings",
    "ReportsSettings",
    "ScheduleSettings",
    "Settings",
    "SmtpSettings",
    "StatementsSettings",
    "load_settings",
    "resolve_config_path",
]
