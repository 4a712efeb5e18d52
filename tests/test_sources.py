from pathlib import Path

import pytest

from heed.errors import SourceError
from indexer.sources import Fields, read_documents

FIXTURES = Path(__file__).parent / "fixtures"
FORMATS = FIXTURES / "formats"
BROKEN = FIXTURES / "broken"


def by_id(paths, **kw):
    return {d.doc_id: d for d in read_documents(paths, **kw)}


def test_folder_is_read_recursively_in_every_format():
    docs = by_id([FORMATS])
    assert set(docs) == {
        "notes.txt",
        "guide.md",
        "page.html",
        "bird-1",
        "bird-2",
        "records.csv:4",
        "nested/deep.md",
    }


def test_csv_record_fields_and_metadata():
    docs = by_id([FORMATS / "records.csv"])
    robin = docs["bird-1"]
    assert robin.title == "Robins"
    assert robin.text.startswith("The European robin")
    assert robin.metadata == {"category": "birds"}
    assert robin.source.endswith("records.csv:2")


def test_record_without_id_gets_one_from_file_and_line():
    assert "records.csv:4" in by_id([FORMATS / "records.csv"])


def test_markdown_title_from_heading_and_markup_removed():
    doc = by_id([FORMATS / "guide.md"])["guide.md"]
    assert doc.title == "Sourdough starter care"
    assert "**" not in doc.text and "once a day" in doc.text
    assert doc.metadata == {"path": "guide.md", "format": "md"}


def test_html_title_and_text_without_scripts_styles_or_nav():
    doc = by_id([FORMATS / "page.html"])["page.html"]
    assert doc.title == "Bicycle chain maintenance"
    assert "degreaser" in doc.text
    for junk in ("tracking", "color:red", "Home | About", "<p>"):
        assert junk not in doc.text


def test_plain_text_title_from_file_name():
    doc = by_id([FORMATS / "notes.txt"])["notes.txt"]
    assert doc.title == "notes"
    assert "80 degrees" in doc.text


def test_other_field_names_by_option(tmp_path: Path):
    path = tmp_path / "beir.jsonl"
    path.write_text('{"_id": "d1", "title": "T", "body": "some body text", "year": 1999}\n')
    docs = by_id([path], fields=Fields(id="_id", text="body"))
    assert docs["d1"].text == "some body text"
    assert docs["d1"].metadata == {"year": 1999}


@pytest.mark.parametrize(
    ("name", "where", "what"),
    [
        ("bad_json.jsonl", "bad_json.jsonl:3", "invalid JSON"),
        ("missing_text.jsonl", "missing_text.jsonl:2", "no 'text' text field"),
        ("empty_text.csv", "empty_text.csv:2", "empty 'text'"),
        ("extra_columns.csv", "extra_columns.csv:2", "more values than header columns"),
        ("latin1.txt", "latin1.txt", "not UTF-8"),
        ("deep_metadata.jsonl", "deep_metadata.jsonl:2", "nested more than 8 levels"),
        ("nan_metadata.jsonl", "nan_metadata.jsonl:2", "not a finite number"),
        ("long_id.csv", "long_id.csv:3", "at most 512 characters"),
    ],
)
def test_malformed_input_names_file_and_line(name: str, where: str, what: str):
    with pytest.raises(SourceError) as info:
        list(read_documents([BROKEN / name]))
    message = str(info.value)
    assert where in message and what in message
    assert "--skip-errors" in message


def test_skip_errors_reports_each_bad_record_and_keeps_the_rest():
    errors: list[SourceError] = []
    docs = by_id([BROKEN / "bad_json.jsonl"], on_error=errors.append)
    assert set(docs) == {"ok-1", "ok-2", "ok-3"}
    assert len(errors) == 1 and "bad_json.jsonl:3" in str(errors[0])


def test_missing_path_is_an_error(tmp_path: Path):
    with pytest.raises(SourceError, match="no such file"):
        list(read_documents([tmp_path / "nope.jsonl"]))
