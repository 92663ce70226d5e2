"""A knowledge base's templates are data: they render in Jinja2's sandbox, and every way a
template can fail becomes a ConfigError naming the file, the line and the fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from domainrag.answer.templates import Templates
from domainrag.errors import ConfigError

# The classic escapes from a Jinja2 template to the shell; each would create ``marker``.
PAYLOADS = {
    "globals": "{{ cycler.__init__.__globals__.os.popen('touch MARKER').read() }}",
    "subclasses": ("{% for c in ''.__class__.__mro__[1].__subclasses__() %}{% if c.__name__ == 'Popen' %}"
                   "{{ c(['touch', 'MARKER']) }}{% endif %}{% endfor %}"),
    "lipsum": "{{ lipsum.__globals__['os'].popen('touch MARKER').read() }}",
    "joiner": "{{ joiner.__init__.__globals__.__builtins__.__import__('os').system('touch MARKER') }}",
    "format": "{{ '{0.__class__.__init__.__globals__}'.format(question) }}",
}


def _template(folder: Path, name: str, system: str, user: str = "{{ question }}") -> None:
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.en.j2").write_text(
        f"{{% block system %}}{system}{{% endblock %}}\n{{% block user %}}{user}{{% endblock %}}\n")


@pytest.mark.parametrize("payload", sorted(PAYLOADS))
def test_code_in_a_template_does_not_run(tmp_path: Path, payload: str) -> None:
    marker = tmp_path / "PWNED"
    folder = tmp_path / "templates"
    _template(folder, "evil", PAYLOADS[payload].replace("MARKER", str(marker)))
    with pytest.raises(ConfigError, match=r"evil\.en\.j2, line 1 tried something templates may not do") as err:
        Templates(folder).render("evil", "en", question="q", sources=[])
    assert "Remove that expression" in str(err.value)
    assert not marker.exists()


def test_code_in_a_knowledge_base_template_does_not_run_during_a_plain_offline_ask(kb_factory, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Levothyroxine treats hypothyroidism. The starting dose is 50 micrograms.")
    kb = kb_factory()
    kb.ingest([docs])
    marker = tmp_path / "PWNED"
    _template(kb.path / "templates", "general", PAYLOADS["globals"].replace("MARKER", str(marker)))
    with pytest.raises(ConfigError, match=r"templates/general\.en\.j2, line 1"):
        kb.ask("What is the starting dose of levothyroxine?")
    assert not marker.exists()


def test_templates_cannot_mutate_what_they_are_given(tmp_path: Path) -> None:
    folder = tmp_path / "templates"
    _template(folder, "mutate", "{{ sources.append(1) }}{{ sources.pop() }}")
    sources = [{"number": 1, "text": "t"}]
    with pytest.raises(ConfigError, match="access to attribute 'append' of 'list' object is unsafe"):
        Templates(folder).render("mutate", "en", question="q", sources=sources)
    assert sources == [{"number": 1, "text": "t"}]


@pytest.mark.parametrize("expression", ["'x' * 10**9", "[0] * 10**8", "2 ** 100000000"])
def test_templates_cannot_build_huge_values(tmp_path: Path, expression: str) -> None:
    folder = tmp_path / "templates"
    _template(folder, "huge", "{{ (" + expression + ") | string | length }}")
    with pytest.raises(ConfigError, match=r"huge\.en\.j2, line 1 tried something templates may not do"):
        Templates(folder).render("huge", "en", question="q")


def test_a_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "broken.en.j2").write_text("{% block system %}\nYou answer.\n{{ question\n{% endblock %}\n")
    with pytest.raises(ConfigError, match=r"broken\.en\.j2, line 4 has a syntax error: .*Fix the template"):
        Templates(folder).render("broken", "en", question="q")


def test_a_syntax_error_in_a_parent_template_names_the_parent(tmp_path: Path) -> None:
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "parent.j2").write_text("{% block system %}{% if %}{% endblock %}")
    (folder / "child.en.j2").write_text("{% extends 'parent.j2' %}{% block user %}{{ question }}{% endblock %}")
    with pytest.raises(ConfigError, match=r"parent\.j2, line 1 has a syntax error"):
        Templates(folder).render("child", "en", question="q")


def test_an_undefined_value_lists_what_a_template_is_given(tmp_path: Path) -> None:
    folder = tmp_path / "templates"
    _template(folder, "typo", "Hello\n{{ questoin }}")
    with pytest.raises(ConfigError, match=r"typo\.en\.j2, line 2 uses an undefined value .*'questoin' is undefined"
                                          r".*given here: question, sources"):
        Templates(folder).render("typo", "en", question="q", sources=[])


def test_a_missing_parent_and_a_failing_expression_are_config_errors(tmp_path: Path) -> None:
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "orphan.en.j2").write_text("{% extends 'nowhere.j2' %}")
    with pytest.raises(ConfigError, match=r"refers to the template 'nowhere\.j2', which does not exist"):
        Templates(folder).render("orphan", "en", question="q")
    _template(folder, "divide", "{{ 1 / 0 }}")
    with pytest.raises(ConfigError, match=r"divide\.en\.j2, line 1 failed while rendering: ZeroDivisionError"):
        Templates(folder).render("divide", "en", question="q")


def test_presets_render_as_before_with_the_same_hashes() -> None:
    """The sandbox changes nothing for the shipped templates: hashes recorded in manifests before
    it (pinned here) and a rendering of every preset with hostile-looking values."""
    templates = Templates()
    assert [templates.hash(f) for f in ("general.en.j2", "medical.zh.j2", "judge.en.j2")] == [
        "b29e49477d53aaa1", "69bd471fe07ccb0e", "99a0e06d3ac5ec16"]
    sources = [{"number": 1, "title": "Guide", "location": "g.pdf, p. 3", "text": "{{ 7 * 7 }} is 81 mg."}]
    for language in ("en", "zh"):
        for name in ("general", "finance", "medical", "legal"):
            prompt = templates.render(name, language, question="What is {{ x }}?", sources=sources,
                                      abstain_message="No.", language_name="English")
            text = json.dumps([m.content for m in prompt.messages], ensure_ascii=False)
            assert "{{ 7 * 7 }} is 81 mg." in text and "What is {{ x }}?" in text and "49" not in text


# -- bounded rendering (issue 20): a knowledge base's template renders in a child process -------
BOMBS = {
    "nested loops": ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
                     "took longer than 1 s to render and was stopped"),
    "format width": ('{{ "%.1000000000f" | format(1.0) }}', "needs more than 256 MB to render"),
    "huge output": ('{% for i in range(100000) %}{{ "x" * 100 }}{% endfor %}', "renders more than 2,000,000"),
}


@pytest.mark.parametrize("bomb", sorted(BOMBS))
def test_a_template_bomb_is_stopped_and_leaves_nothing_running(tmp_path: Path, monkeypatch, bomb: str) -> None:
    import multiprocessing
    import threading

    from domainrag.answer import templates as module

    monkeypatch.setattr(module, "RENDER_TIMEOUT_S", 1.0)
    folder = tmp_path / "templates"
    expression, message = BOMBS[bomb]
    _template(folder, "bomb", expression)
    threads = threading.active_count()
    with pytest.raises(ConfigError, match=rf"bomb\.en\.j2.*{message}"):
        Templates(folder).render("bomb", "en", question="q")
    assert multiprocessing.active_children() == []
    assert threading.active_count() == threads


def test_a_knowledge_base_template_renders_as_before_in_its_child(tmp_path: Path) -> None:
    folder = tmp_path / "templates"
    _template(folder, "mine", "Answer from {{ sources | length }} sources.", "Q: {{ question }}")
    prompt = Templates(folder).render("mine", "en", question="why?", sources=[{"n": 1}, {"n": 2}])
    assert [(m.role, m.content) for m in prompt.messages] == [("system", "Answer from 2 sources."),
                                                              ("user", "Q: why?")]
