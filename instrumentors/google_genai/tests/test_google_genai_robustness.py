"""An internal failure of the plugin never reaches the application: the call goes ahead."""

from __future__ import annotations

from genops_autoinstrument.api.testing import capture


def _boom(*args, **kwargs):
    raise RuntimeError("plugin bug")


def test_request_description_failure_lets_the_call_run_unrecorded(client, server, settings, monkeypatch):
    from genops_instrumentation_google_genai import _wrappers

    monkeypatch.setattr(_wrappers, "build_request", _boom)
    with capture(settings) as recorded:
        assert client.models.generate_content(model="gemini-2.5-flash", contents="x").text == "Hello from Gemini."
        assert client.models.embed_content(model="gemini-embedding-001", contents="x") is not None
        assert [c.text for c in client.models.generate_content_stream(model="gemini-2.5-flash", contents="x")] == ["Hello from Gemini."]
    assert recorded.spans() == []
    assert len(server.requests) == 3


def test_response_reading_failure_still_ends_the_span_once(client, server, settings, gemini, monkeypatch):
    from genops_instrumentation_google_genai import _response, _wrappers

    monkeypatch.setattr(_wrappers, "usage_of", _boom)
    monkeypatch.setattr(_wrappers, "finish_reasons_of", _boom)
    monkeypatch.setattr(_response, "usage_of", _boom)
    with capture(settings) as recorded:
        response = client.models.generate_content(model="gemini-2.5-flash", contents="x")
        chunks = list(client.models.generate_content_stream(model="gemini-2.5-flash", contents="x"))
    assert response.text == "Hello from Gemini." and chunks[0].text == "Hello from Gemini."
    spans = recorded.spans()
    assert len(spans) == 2
    assert all("error.type" not in span.attributes for span in spans)
