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

For an adaptor's own tests (``my_adaptor/tests``), public with ``__all__``:

- ``simulators``: ``free_port``, ``running_simulator`` (a simulator as a real process on a
  free loopback port, its base URL once it answers), ``wait_until_ready``;
- ``hostile``: ``HostileServer`` (a vendor whose replies are too big, endless, gzip bombs,
  slow-loris, empty or HTML error pages), ``HTML_ERROR_PAGES``, ``TOKEN``.

Only pytest and PyYAML are added by the extra; nothing here imports the gateway.
"""
