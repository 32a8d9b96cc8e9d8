"""The adaptor contract kit (``pip install 'repairs-gateway-sdk[testing]'``): a pytest plugin
(``repairs_gateway_sdk.testing.plugin``, registered through the SDK's ``pytest11`` entry point)
that checks an adaptor does what the gateway relies on, against its backend or simulator,
without the gateway installed:

    pytest --adaptor TYPE --adaptor-config contract.yaml

- ``structure``: the structural checks as functions returning problems
  (``check_adaptor_type(name)``), usable from any test;
- ``spec``: the contract configuration file; ``backend``: starting its simulator;
- ``checks``: assertions shared by the suite; ``store``: the kit's own store for stateful
  adaptors (SQLite) when no host offers one; ``hooks``: what a host may implement;
- ``suite/``: the checks themselves (structure, addresses, scheduler, works orders, timeouts).

Only pytest and PyYAML are added by the extra; the suite imports nothing of the gateway.
"""
