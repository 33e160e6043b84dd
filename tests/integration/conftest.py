"""Every integration test ends by checking the Slack and Jira fakes recorded no errors of their own.

An error in a fake (a request it could not handle, answered as `fatal_error` or HTTP 500) may leave
the flow under test looking fine while it talked to nothing real: the test fails, naming the error.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import SessionStack


@pytest.fixture(autouse=True)
def fakes_recorded_no_errors(request: pytest.FixtureRequest) -> Iterator[None]:
    if "stack" not in request.fixturenames:
        yield
        return
    stack: SessionStack = request.getfixturevalue("stack")
    fakes = {"Slack": stack.slack, "Jira": stack.jira}
    seen = {name: len(fake.errors) if fake else 0 for name, fake in fakes.items()}
    yield
    new = [
        f"{name} fake: {trace}"
        for name, fake in fakes.items()
        if fake is not None
        for trace in fake.errors[seen[name] :]
    ]
    if new:
        pytest.fail("the fakes recorded errors during the test:\n" + "\n".join(new), pytrace=False)
