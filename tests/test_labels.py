"""The taxonomy and tasks: which label becomes which class."""

import pytest

from toonvision.data_processing.balance import taxonomy_counts
from toonvision.labels import (
    COG_LABELS,
    TAXONOMY_LABELS,
    TOON_LABELS,
    label_kind,
    label_prefix,
    legacy_safe_label,
    make_task,
    safe_label,
    task_for_classes,
    taxonomy_parts,
)


def test_taxonomy_sizes():
    assert len(COG_LABELS) == 32
    assert len(TOON_LABELS) == 11
    assert len(set(TAXONOMY_LABELS)) == 43


def test_taxonomy_matches_labelimg_class_list(shared_data):
    lines = (shared_data / "toontown" / "predefined_classes.txt").read_text().split()
    listed = [line for line in lines if not line.startswith("=")]
    assert sorted(listed) == sorted(TAXONOMY_LABELS)


@pytest.mark.parametrize(
    ("task", "label", "expected"),
    [
        ("binary", "cog_sb_coldcaller", "cog"),
        ("binary", "toon_dog", "toon"),
        ("binary", "king", None),
        ("suit", "cog_lb_bloodsucker", "lawbot"),
        ("suit", "cog_bb_flunky", "bossbot"),
        ("suit", "toon_dog", None),
        ("name", "cog_cb_moneybags", "moneybags"),
        ("name", "cog_xx_fake", None),
        ("animal", "toon_rabbit", "rabbit"),
        ("animal", "cog_bb_flunky", None),
    ],
)
def test_taxonomy_tasks(task, label, expected):
    assert make_task(task).class_of(label) == expected


def test_task_class_counts():
    assert make_task("suit").num_classes == 4
    assert make_task("name").num_classes == 32
    assert make_task("animal").num_classes == 11


def test_label_task_takes_classes_from_data():
    task = make_task("label", ["queen", "ace", "king", "ace"])
    assert task.classes == ("ace", "king", "queen")
    assert task.class_index("king") == 1
    assert task.class_of("joker") is None


def test_explicit_class_list_keeps_only_named_labels():
    task = make_task("king,queen,jack")
    assert task.classes == ("jack", "king", "queen")
    assert task.class_of("ace") is None


def test_explicit_mapping_merges_labels():
    task = make_task("king=face,queen=face,jack=face,ace=number")
    assert task.classes == ("face", "number")
    assert task.class_index("queen") == task.class_index("king") == 0
    assert task.class_of("ten") is None


@pytest.mark.parametrize("spec", ["colour", "", "king,king", ","])
def test_bad_task_spec_is_a_clear_error(spec):
    with pytest.raises(ValueError):
        make_task(spec)


@pytest.mark.parametrize(
    ("label", "safe"),
    [
        ("cog_bb_flunky", "cog_bb_flunky"),
        ("../../etc/passwd", "etc_passwd"),
        ("a/b\\c", "a_b_c"),
        ("toon dog", "toon_dog"),
        ("..hidden", "hidden"),
        ("Pokémon", "Pokémon"),
        ("Poke\u0301mon", "Pokémon"),          # decomposed, as macOS names files: composed
        ("ポケモン/../ピカチュウ", "ポケモン___ピカチュウ"),
        ("हिन्दी", "हिन्दी"),                  # vowel signs are marks: kept
        ("\u0301é", "é"),                       # a leading mark is stripped like a dot
        ("Mr. Mime", "Mr._Mime"),
    ],
)
def test_safe_label_never_names_a_path(label, safe):
    assert safe_label(label) == safe
    assert "/" not in safe and "\\" not in safe and ".." not in safe


def test_a_class_list_typed_decomposed_names_the_composed_labels():
    task = make_task("Poke\u0301mon=mon,ポケモン=mon")
    assert task.class_of("Pokémon") == "mon" and task.class_of("ポケモン") == "mon"


@pytest.mark.parametrize(
    ("label", "legacy"),
    [("café", "caf_"), ("toon_cat é x", "toon_cat_x"), ("../../etc/passwd", "etc_passwd"),
     ("Mr. Mime", "Mr._Mime")],
)
def test_legacy_safe_label_is_the_ascii_rule_of_earlier_versions(label, legacy):
    assert legacy_safe_label(label) == legacy
    with pytest.raises(ValueError):
        legacy_safe_label("ポケモン")


@pytest.mark.parametrize("label", ["", "..", "///", "   "])
def test_unusable_label_is_rejected(label):
    with pytest.raises(ValueError):
        safe_label(label)


def test_label_prefix():
    assert label_prefix("cog_lb_bigwig") == "cog"
    assert label_prefix("toon_cat") == "toon"
    assert label_prefix("king") == "king"


def test_an_unknown_task_name_gets_a_suggestion():
    with pytest.raises(ValueError, match=r"unknown task 'binery' \(did you mean 'binary'\?\)"):
        make_task("binery")
    with pytest.raises(ValueError, match="unknown task 'animals' .*'animal'"):
        make_task("animals")
    with pytest.raises(ValueError) as error:
        make_task("colour")
    assert "did you mean" not in str(error.value) and "use one of binary" in str(error.value)


def test_taxonomy_parts_are_what_every_task_and_count_reads():
    assert taxonomy_parts("cog_sb_coldcaller") == {"binary": "cog", "suit": "sellbot",
                                                   "name": "coldcaller"}
    assert taxonomy_parts("toon_dog") == {"binary": "toon", "animal": "dog"}
    assert taxonomy_parts("cog_xx_fake") == taxonomy_parts("king") == {}
    for label in TAXONOMY_LABELS:
        for task_name, part in taxonomy_parts(label).items():
            assert make_task(task_name).class_of(label) == part
    suits, animals = taxonomy_counts(["cog_sb_coldcaller", "cog_bb_flunky", "cog_sb_twoface",
                                      "toon_dog", "cog_xx_fake", "toon_unicorn", "king"])
    assert (suits["sellbot"], suits["bossbot"], suits["lawbot"]) == (2, 1, 0)
    assert animals["dog"] == 1 and sum(animals.values()) == 1


def test_the_prefix_alone_makes_a_cog_or_a_toon():
    assert [label_kind(label) for label in ("cog_xx_fake", "toon_unicorn", "king", "cogs")] == [
        "cog", "toon", None, None]
    assert make_task("binary").class_of("cog_xx_fake") == "cog"
    assert label_prefix("cog_xx_fake") == "cog"


def test_task_for_classes_checks_the_model_classes_and_their_order():
    assert task_for_classes("binary", ("cog", "toon")).name == "binary"
    assert task_for_classes("label", ("ace", "king")).classes == ("ace", "king")
    with pytest.raises(ValueError, match="gives classes cog, toon but the model predicts toon, "
                                         "cog"):
        task_for_classes("binary", ("toon", "cog"))
    with pytest.raises(ValueError, match="did you mean 'suit'"):
        task_for_classes("suits", ("bossbot", "lawbot", "cashbot", "sellbot"))
