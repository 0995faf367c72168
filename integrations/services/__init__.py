"""Write paths of the integrations app, one module a concern (docs/integrations.md).

``contacts`` (the Systeme.io connection and contact sync), ``rules`` (automation rules), ``inbound`` (Systeme.io
webhooks), ``webhooks`` (outbound endpoints and events), ``delivery`` (signed delivery attempts) and
``preflight`` (the symbol pre-flight on stored accounts). Services that call a remote API keep each local write in
its own short transaction (one per contact, per firing, per delivery) instead of one transaction around network
calls.
"""

#: The longest error text kept on a row (remote answers can be whole pages).
ERROR_LIMIT = 500
