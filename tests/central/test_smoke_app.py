"""The regulator side starts inside central's app and answers."""

import pytest
from central_support import Central

pytestmark = pytest.mark.asyncio


async def test_login_and_me(central: Central) -> None:
    headers = await central.token("inspector-a")
    resp = await central.client.get("/api/v1/auth/me", headers=headers)
    assert resp.status == 200
    assert (await resp.json())["user"]["role"] == "county_inspector"
