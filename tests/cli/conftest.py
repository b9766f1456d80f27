import pytest

from semrec.cli.main import main


@pytest.fixture
def run_cli(capsys):
    """Run ``semrec ARGS...`` in-process; returns ``(exit code, stdout, stderr)``."""

    def run(*args: str) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as exc:
            main(list(args))
        out, err = capsys.readouterr()
        return exc.value.code, out, err

    return run
