"""Spyne 2.14 must import and serve on 3.11, 3.12 and 3.13 (see mlconnector/soap/compat.py)."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_spyne_imports_and_a_trivial_app_answers() -> None:
    # A fresh interpreter, so the check does not depend on what other tests imported first.
    code = textwrap.dedent(
        """
        from mlconnector.soap.compat import ensure_spyne_importable
        ensure_spyne_importable()
        import spyne
        from spyne import Application, ServiceBase, Unicode, rpc
        from spyne.protocol.soap import Soap11
        from spyne.server.null import NullServer

        class Echo(ServiceBase):
            @rpc(Unicode, _returns=Unicode)
            def echo(ctx, text):
                return text.upper()

        app = Application([Echo], tns="urn:test", in_protocol=Soap11(), out_protocol=Soap11())
        print(spyne.__version__, NullServer(app, ostr=False).service.echo("ok"))
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-2:] == ["2.14.0", "OK"]


def test_the_alias_is_installed_once() -> None:
    from mlconnector.soap.compat import _SpyneSixMovesFinder, ensure_spyne_importable

    ensure_spyne_importable()
    ensure_spyne_importable()
    finders = [f for f in sys.meta_path if isinstance(f, _SpyneSixMovesFinder)]
    assert len(finders) == (1 if sys.version_info >= (3, 12) else 0)
