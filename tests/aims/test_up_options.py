"""`aims up --brokers N --prefect-db …`: a wrong number, a cluster named elsewhere or a database that is
not PostgreSQL exits 2 and starts nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from aims.cli import main


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for variable in ("KAFKA_BOOTSTRAP_SERVERS", "AIMS_KAFKA_BOOTSTRAP_SERVERS", "PREFECT_API_URL"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AIMS_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


@pytest.mark.parametrize("brokers", ["0", "6", "-1"])
def test_a_cluster_size_out_of_range_exits_2_naming_the_limits(
    state: Path, brokers: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["up", "--brokers", brokers]) == 2
    err = capsys.readouterr().err
    assert f"--brokers {brokers}" in err and "kafka_local_brokers" in err
    assert not state.exists() or not any(state.iterdir()), "nothing was started or written"


def test_brokers_beside_an_existing_cluster_exits_2_and_says_which_setting(
    state: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka.example:9093")
    assert main(["up", "--detach", "--brokers", "3"]) == 2
    assert "KAFKA_BOOTSTRAP_SERVERS names an existing one" in capsys.readouterr().err
    assert not state.exists() or not any(state.iterdir())


def test_a_state_folder_of_one_node_refuses_three_before_starting_any(tmp_path: Path) -> None:
    from infra.kafka_broker import BrokerUnavailable, KafkaBroker

    (tmp_path / "kafka" / "data").mkdir(parents=True)
    (tmp_path / "kafka" / "data" / "meta.properties").write_text("node.id=1\n")
    with pytest.raises(BrokerUnavailable, match="holds the storage of one node, and 3 node"):
        KafkaBroker(tmp_path, nodes=3).start()
    assert not (tmp_path / "kafka" / "node-1").exists()


def test_a_prefect_database_that_is_not_postgresql_exits_2_without_quoting_its_password(
    state: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AIMS_PREFECT_DATABASE_URL", "mysql://prefect:hunter2-secret@db.example/prefect")
    assert main(["up", "--prefect-db", "postgres"]) == 2
    err = capsys.readouterr().err
    assert "postgresql+asyncpg://" in err and "prefect_database_url" in err
    assert "hunter2-secret" not in err
    assert not state.exists() or not any(state.iterdir())


def test_a_database_kind_aims_up_does_not_know_is_a_usage_error(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["up", "--prefect-db", "mysql"])
    assert exited.value.code == 2 and "invalid choice: 'mysql'" in capsys.readouterr().err
