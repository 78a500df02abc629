"""The simulator: the outside world pcsync talks to, served over real HTTPS on loopback.

Self-contained: it imports nothing from the client (``connectors.partner_center``),
the payment readers, the domain or the application — an import-linter contract in
pyproject.toml holds it to that, so the client is tested against an independent
reading of Microsoft's API, not against itself.

* ``server`` — ``Simulator`` and ``SimulatorConfig``: the running server and its settings;
* one module per API surface: ``identity`` (Entra ID), ``partner_center`` (customers,
  subscriptions, Azure entitlements), ``billing`` (invoices, line items), ``exports``
  (Graph v2 billing exports), ``storage`` (export blobs), ``faults`` (refusals,
  throttling, faults, short pages, lost answers); ``handler``, ``paging`` and ``wire``
  are what they share;
* the world served: ``data.Dataset`` (lookups and later changes) over ``documents``
  (the API's JSON), ``world`` (generation), ``catalog`` (offers, currencies, helpers)
  and ``payments`` (the customers' payments file);
* ``tls`` — the throw-away certificate authority the server presents.

Importing this package imports nothing: ``from connectors.simulator.server import
Simulator`` loads the server only where it is wanted.
"""
