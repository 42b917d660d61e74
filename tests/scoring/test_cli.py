"""`postillon scoring`: thin over the service, errors as a message and exit code 2."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from postillon.cli.main import app
from postillon.runtime import Runtime


def test_rules_are_created_from_yaml_and_listed(runtime: Runtime, tmp_path: Path) -> None:
    env = {
        "POSTILLON_DATABASE_URL": runtime.database.url,
        "POSTILLON_DATA_DIR": str(tmp_path),
        "POSTILLON_SECRET_KEY": "cli-test-secret",
        "COLUMNS": "200",
    }
    runner = CliRunner()
    good = tmp_path / "rule.yaml"
    good.write_text(
        "name: viewed shoes\n"
        "event: Product Viewed\n"
        "where:\n"
        "  all:\n"
        "    - {property: category, op: '=', value: shoes}\n"
        "points: 5\n"
        "daily_limit: 20\n"
    )
    result = runner.invoke(app, ["scoring", "rules", "create", "--file", str(good)], env=env)
    assert result.exit_code == 0, result.output
    assert "created rule 'viewed shoes'" in result.output
    listed = runner.invoke(app, ["scoring", "rules", "list"], env=env)
    assert "viewed shoes" in listed.output and "+5" in listed.output
    models = runner.invoke(app, ["scoring", "models", "list"], env=env)
    assert "main" in models.output and "Lead score" in models.output

    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nevent: E\npoints: 0\nwhere: {any: [{property: p, op: nope}]}\n")
    result = runner.invoke(app, ["scoring", "rules", "create", "--file", str(bad)], env=env)
    assert result.exit_code == 2
    assert "where.any[0].op" in result.output and "points" in result.output
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    result = runner.invoke(app, ["scoring", "rules", "create", "--file", str(broken)], env=env)
    assert result.exit_code == 2 and "line" in result.output
    with runtime.database.transaction(read_only=True) as session:
        assert len(runtime.scoring.list_rules(session)) == 1
