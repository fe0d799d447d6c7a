"""GET /v1/models/{version}/report on the real server over the demo's model."""

from __future__ import annotations

import pytest


def test_the_report_of_a_version_and_of_latest_is_served_as_html(api, flow):
    version = (flow.models_dir / "latest").resolve().name
    with api.client() as client:
        by_version = client.get(f"/v1/models/{version}/report")
        latest = client.get("/v1/models/latest/report")
    assert by_version.status_code == 200, by_version.text
    assert by_version.headers["content-type"].startswith("text/html")
    assert f"<title>Model {version}</title>" in by_version.text
    assert by_version.content == (flow.models_dir / version / "report.html").read_bytes()
    assert latest.content == by_version.content


def test_a_version_without_a_model_is_a_404_naming_it(api):
    with api.client() as client:
        response = client.get("/v1/models/20990101T000000000000Z/report")
    assert response.status_code == 404
    assert "'20990101T000000000000Z'" in response.json()["detail"]


@pytest.mark.parametrize("version", ["%2E%2E", "..%2Fdata", ".latest", "a%20b", "v" * 101])
def test_anything_but_a_version_name_is_refused_before_a_file_is_read(api, version):
    """`..` and slashes (percent-encoded, so the client sends them as they are) never
    reach the file system: the pattern refuses them with the field named, or no route
    matches a path with more segments."""
    with api.client() as client:
        response = client.get(f"/v1/models/{version}/report")
    if "%2F" in version:
        assert response.status_code == 404
        assert "report" not in response.text
    else:
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["loc"] == ["path", "version"]


@pytest.mark.parametrize("version", ["model.txt", "LATEST", "20261201T0000000000Z"])
def test_a_version_name_without_a_report_is_not_found(api, version):
    """A name the pattern admits stays one path segment under models_dir; a file there
    (not a model folder) or an unknown version is a 404 that names it."""
    with api.client() as client:
        response = client.get(f"/v1/models/{version}/report")
    assert response.status_code == 404
    assert version in response.json()["detail"]
