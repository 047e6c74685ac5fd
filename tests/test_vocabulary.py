"""The shipped unified vocabulary, cross-checked against CLIMB's dataset table.

The expectations below are typed from ../shared/SOURCES.md (section 1, Table 7
classes) and the mapping decisions in docs/vocabulary.md, not read back from
vocabulary.json, so a change to the data file has to agree with them.
"""

from __future__ import annotations

import csv
import json
from importlib import resources

import numpy as np
import pytest

from medshard.schemas.models import Modality
from medshard.schemas.vocabulary import UnknownClass, Vocabulary, VocabularyFile, load_vocabulary
from medshard.sources.registry import BUILTIN_SOURCES, source_class

# The 45 CLIMB datasets in Table 6 order, with Table 7's classes (short names;
# "Same as PTB-XL" rows spelled out; None = "Not classification" or blank).
ECG7 = ["Normal", "CD", "HYP", "MI", "STTC", "A. Fib/Aflutter", "Other"]
CHEXPERT14 = [
    "No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion",
    "Edema", "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion",
    "Pleural Other", "Fracture", "Support Devices",
]
DERM5 = ["MEL", "NV", "BCC", "AKIEC", "OTHER"]
CHOLEC80_PHASES = [
    "Preparation", "CalotTriangleDissection", "ClippingCutting", "GallbladderDissection",
    "GallbladderPackaging", "CleaningCoagulation", "GallbladderRetraction",
]
CHOLEC80_TOOLS = ["Grasper", "Bipolar", "Hook", "Scissors", "Clipper", "Irrigator", "SpecimenBag"]
HUGADB_ACTIVITIES = [
    "Walking", "Running", "Going up", "Going down", "Sitting", "Sitting down", "Standing up",
    "Standing", "Bicycling", "Up by elevator", "Down by elevator", "Sitting in car",
]

TABLE7: dict[str, list[str] | None] = {
    "ptb-xl": ECG7,
    "chapman-shaoxing": ECG7,
    "georgia": ECG7,
    "cpsc": ECG7,
    "iiic": ["SZ", "LPD", "GPD", "LRDA", "GRDA", "Other"],
    "tuab": ["Normal", "Abnormal"],
    "tuev": ["SPSW", "GPED", "PLED", "EYEM", "ARTF", "BCKG"],
    "mimic-cxr": [
        "Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Enlarged Cardiomeastinum",
        "Fracture", "Lung Lesion", "Lung Opacity", "Pleural Effusion", "Pneumonia", "Pneumothorax",
        "Pleural Other", "Support Devices", "No Finding",
    ],
    "chexpert": CHEXPERT14,
    "vindr-cxr": ["Lung tumor", "Pneumonia", "Tuberculosis", "COPD", "Other diseases", "No finding"],
    "covid-19": ["Normal", "Bacterial Pneumonia", "COVID-19", "Viral Pneumonia"],
    "coronahack": ["Normal", "Bacterial Pneumonia", "Viral Pneumonia"],
    "vindr-mammo": ["BI-RAD 1", "BI-RAD 2", "BI-RAD 3", "BI-RAD 4", "BI-RAD 5"],
    "cbis-ddsm": ["BI-RAD 0", "BI-RAD 1", "BI-RAD 2", "BI-RAD 3", "BI-RAD 4", "BI-RAD 5"],
    "cmmd": ["Benign", "Malignant"],
    "isic-2020": ["Malignant", "Benign"],
    "ham10000": DERM5,
    "pad-ufes-20": DERM5,
    "messidor-2": ["None", "Mild DR", "Moderate DR", "Severe DR", "PDR"],
    "aptos-2019": ["No DR", "Mild", "Moderate", "Severe", "Proliferative DR"],
    "jichi": ["SDR", "PPDR", "PDR"],
    "lndb": ["nodule ≥ 3mm", "nodule ≤ 3mm", "non-nodule"],
    "inspect": [
        "No PE", "Acute Subsegmental-only PE", "Acute PE", "Subsegmental-only PE", "Chronic PE",
    ],
    "kits23": ["Benign", "Malignant"],
    "hemorrhage": ["No Hemorrhage", "Has Hemorrhage"],
    "rspect": ["No PE", "Chronic PE", "Acute PE"],
    "echonet-dynamic": None,
    "busi": ["Normal", "Malignant", "Benign"],
    "covid-blues": ["Has COVID", "No COVID"],
    "covid-us": ["Covid", "Pneumonia", "Normal"],
    "brain-tumor": ["No Tumor", "Pituitary Tumor", "Glioma Tumor", "Meningioma Tumor"],
    "brain-mri": ["Yes", "No"],
    "abcd": ["Normal", "Abnormal"],
    "abide": ["ASD", "Typical controls"],
    "ppmi": ["Control", "PD patients"],
    "proteins": ["Enzyme", "Not enzyme"],
    "ppi": None,
    "lc25000": [
        "Colon adenocarcinomas", "Benign colon", "Lung adenocarcinomas",
        "Lung squamous cell carcinomas", "Benign lung",
    ],
    "bcss": ["Tumor", "Stroma", "Lymphocytic infiltrate", "Necrosis/debris"],
    # Table 7: "Surgery phase annotations and surgery tool labels" (names from SOURCES.md s.3)
    "cholec80": CHOLEC80_PHASES + CHOLEC80_TOOLS,
    "hugadb": ["Sitting", "Standing", "Sitting down", "Standing up"],
    "expression-atlas": None,
    "geo": None,
    "vital": None,
    "mimic-iv": ["Yes", "No"],
}

# Where a source names its classes differently from Table 7: Table 7 class ->
# the source classes (vocabulary keys) that carry it. Everything else is 1:1.
TABLE7_TO_SOURCE: dict[str, dict[str, list[str]]] = {
    "ptb-xl": {
        "Normal": ["NORM"], "A. Fib/Aflutter": ["AFIB", "AFLT"], "Other": ["OTHER"],
    },
    "tuab": {"Normal": ["normal"], "Abnormal": ["abnormal"]},
    "mimic-cxr": {"Enlarged Cardiomeastinum": ["Enlarged Cardiomediastinum"]},
    "covid-19": {
        "Bacterial Pneumonia": ["BacterialPneumonia"], "Viral Pneumonia": ["ViralPneumonia"],
    },
    "vindr-mammo": {f"BI-RAD {n}": [f"BI-RADS {n}"] for n in range(1, 6)},
    "cbis-ddsm": {f"BI-RAD {n}": [f"BI-RADS {n}"] for n in range(6)},
    "isic-2020": {"Malignant": ["malignant"], "Benign": ["benign"]},
    "ham10000": {
        "MEL": ["mel"], "NV": ["nv"], "BCC": ["bcc"], "AKIEC": ["akiec"],
        "OTHER": ["bkl", "df", "vasc"],
    },
    "pad-ufes-20": {"NV": ["NEV"], "AKIEC": ["ACK", "SCC"], "OTHER": ["SEK"]},
    "jichi": {"SDR": ["sdr"], "PPDR": ["ppdr"], "PDR": ["pdr"]},
    "lndb": {"nodule ≤ 3mm": ["nodule < 3mm"]},
    "kits23": {"Benign": ["benign"], "Malignant": ["malignant"]},
    "busi": {"Normal": ["normal"], "Malignant": ["malignant"], "Benign": ["benign"]},
    "covid-us": {"Covid": ["covid"], "Pneumonia": ["pneumonia"], "Normal": ["normal"]},
    "brain-tumor": {
        "No Tumor": ["no_tumor"], "Pituitary Tumor": ["pituitary_tumor"],
        "Glioma Tumor": ["glioma_tumor"], "Meningioma Tumor": ["meningioma_tumor"],
    },
    "brain-mri": {"Yes": ["yes"], "No": ["no"]},
    "abcd": {"Normal": [], "Abnormal": []},  # CLIMB's loader predicts sex: M / F
    "lc25000": {
        "Colon adenocarcinomas": ["colon_aca"], "Benign colon": ["colon_n"],
        "Lung adenocarcinomas": ["lung_aca"], "Lung squamous cell carcinomas": ["lung_scc"],
        "Benign lung": ["lung_n"],
    },
    "bcss": {
        "Tumor": ["tumor"], "Stroma": ["stroma"],
        "Lymphocytic infiltrate": ["lymphocytic_infiltrate"],
        "Necrosis/debris": ["necrosis_or_debris"],
    },
}

VINDR_CXR_28 = [
    "Aortic enlargement", "Atelectasis", "Calcification", "Cardiomegaly", "Clavicle fracture",
    "Consolidation", "Edema", "Emphysema", "Enlarged PA", "ILD", "Infiltration", "Lung Opacity",
    "Lung cavity", "Lung cyst", "Mediastinal shift", "Nodule/Mass", "Pleural effusion",
    "Pleural thickening", "Pneumothorax", "Pulmonary fibrosis", "Rib fracture", "Other lesion",
    "COPD", "Lung tumor", "Pneumonia", "Tuberculosis", "Other diseases", "No finding",
]

# PhysioNet/CinC Challenge 2021 scored SNOMED CT codes (dx_mapping_scored.csv, all 30) and
# the concepts docs/vocabulary.md decides for each. [] = a rhythm or an axis, no concept.
CD, STTC, OTHER = "ecg.conduction-disturbance", "ecg.st-t-change", "ecg.other"
CHALLENGE_SNOMED: dict[str, list[str]] = {
    "164889003": ["ecg.afib"], "164890007": ["ecg.aflutter"],
    "270492004": [CD], "6374002": [CD], "713427006": [CD], "59118001": [CD], "713426002": [CD],
    "164909002": [CD], "733534002": [CD], "445118002": [CD], "698252002": [CD],
    "164947007": [CD],
    "111975006": [STTC], "164934002": [STTC], "59931005": [STTC],
    "251146004": [OTHER], "10370003": [OTHER], "284470004": [OTHER], "63593006": [OTHER],
    "427172004": [OTHER], "17338001": [OTHER], "164917005": [OTHER], "365413008": [OTHER],
    "426783006": [], "427393009": [], "426177001": [], "427084000": [], "426627000": [],
    "39732003": [], "47665007": [],
}
CHALLENGE_SETS = ("chapman-shaoxing", "georgia", "cpsc")
# each set's column in the Challenge's mapping files (records per code in that set)
CHALLENGE_COLUMN = {"chapman-shaoxing": "chapman_shaoxing", "georgia": "georgia", "cpsc": "cpsc"}


def challenge_table() -> list[dict[str, str]]:
    text = resources.files("medshard.schemas").joinpath("ecg_challenge_snomed.csv").read_text()
    return list(csv.DictReader(text.splitlines()))


def challenge_codes(slug: str) -> set[str]:
    """The codes the Challenge counts in a set: the set's classes."""
    return {r["snomed_ct_code"] for r in challenge_table() if int(r[CHALLENGE_COLUMN[slug]]) > 0}

# The classes each source's map must have, exactly (what its adapter emits).
EXTRA_SOURCE_CLASSES: dict[str, list[str]] = {
    "ptb-xl": ["CD", "HYP", "MI", "STTC"],  # the Table 7 abbreviations PTB-XL shares
    "vindr-cxr": VINDR_CXR_28,  # the 22 findings too, not only Table 7's 6 diagnoses
    "jichi": ["ndr"],  # in the data and CLIMB's loader, not in Table 7
    "rspect": ["Acute and Chronic PE"],  # for an adapter that keeps acute_and_chronic_pe
    "hugadb": HUGADB_ACTIVITIES,  # all 12 activities, Table 7 lists CLIMB's 4
    "coronahack": ["COVID-19"],  # Label_2_Virus_category separates it; CLIMB folds it in
    "abcd": ["M", "F"],  # id2sex.txt, what CLIMB's ABCD loader predicts
}


def expected_source_classes(slug: str) -> set[str]:
    if slug in CHALLENGE_SETS:  # SNOMED CT codes, not CLIMB's coarse classes
        return challenge_codes(slug)
    table7 = TABLE7[slug] or []
    renames = TABLE7_TO_SOURCE.get(slug, {})
    out: set[str] = set()
    for cls in table7:
        out.update(renames.get(cls, [cls]))
    out.update(EXTRA_SOURCE_CLASSES.get(slug, []))
    return out


# Concepts each source can express (its mask size).
EXPECTED_MASK_SIZE: dict[str, int] = {
    "ptb-xl": 8, "chapman-shaoxing": 7, "georgia": 7, "cpsc": 4,
    "iiic": 6, "tuab": 2, "tuev": 6,
    "mimic-cxr": 14, "chexpert": 14, "vindr-cxr": 31, "covid-19": 5, "coronahack": 5,
    "vindr-mammo": 5, "cbis-ddsm": 6, "cmmd": 2,
    "isic-2020": 2, "ham10000": 7, "pad-ufes-20": 7,
    "messidor-2": 5, "aptos-2019": 5, "jichi": 4,
    "lndb": 3, "inspect": 4, "kits23": 2, "hemorrhage": 2, "rspect": 3,
    "echonet-dynamic": 0, "busi": 3, "covid-blues": 2, "covid-us": 3,
    "brain-tumor": 5, "brain-mri": 2,
    "abcd": 2, "abide": 2, "ppmi": 2, "proteins": 2, "ppi": 0,
    "lc25000": 5, "bcss": 4, "cholec80": 14, "hugadb": 12,
    "expression-atlas": 0, "geo": 0, "vital": 0, "mimic-iv": 2,
}

# Concept id family -> the modality its concepts carry.
FAMILY_MODALITY = {
    "ecg": "ecg", "eeg": "eeg", "cxr": "chest-xray", "mammo": "mammography", "derm": "dermoscopy",
    "fundus": "fundus", "ct": "ct", "us": "ultrasound", "mri": "mri", "graph": "graph",
    "path": "pathology", "video": "video", "imu": "imu", "ehr": "ehr", "oct": "oct",
}

# Classes that deliberately map to several concepts (a kind of X is also X).
MULTI_CONCEPT_CLASSES: dict[tuple[str, str], set[str]] = {
    ("vindr-cxr", "Aortic enlargement"): {"cxr.aortic-enlargement", "cxr.enlarged-cardiomediastinum"},
    ("vindr-cxr", "Clavicle fracture"): {"cxr.clavicle-fracture", "cxr.fracture"},
    ("vindr-cxr", "Rib fracture"): {"cxr.rib-fracture", "cxr.fracture"},
    ("vindr-cxr", "Lung cavity"): {"cxr.lung-cavity", "cxr.lung-lesion"},
    ("vindr-cxr", "Lung cyst"): {"cxr.lung-cyst", "cxr.lung-lesion"},
    ("vindr-cxr", "Nodule/Mass"): {"cxr.nodule-mass", "cxr.lung-lesion"},
    ("vindr-cxr", "Lung tumor"): {"cxr.lung-tumor", "cxr.lung-lesion"},
    ("vindr-cxr", "Pleural thickening"): {"cxr.pleural-thickening", "cxr.pleural-other"},
    ("covid-19", "BacterialPneumonia"): {"cxr.bacterial-pneumonia", "cxr.pneumonia"},
    ("covid-19", "ViralPneumonia"): {"cxr.viral-pneumonia", "cxr.pneumonia"},
    ("covid-19", "COVID-19"): {"cxr.covid-19", "cxr.viral-pneumonia", "cxr.pneumonia"},
    ("coronahack", "Bacterial Pneumonia"): {"cxr.bacterial-pneumonia", "cxr.pneumonia"},
    ("coronahack", "Viral Pneumonia"): {"cxr.viral-pneumonia", "cxr.pneumonia"},
    ("coronahack", "COVID-19"): {"cxr.covid-19", "cxr.viral-pneumonia", "cxr.pneumonia"},
    ("pad-ufes-20", "SEK"): {"derm.seborrheic-keratosis", "derm.benign-keratosis"},
    ("inspect", "Acute Subsegmental-only PE"): {"ct.acute-pe", "ct.subsegmental-only-pe"},
    ("inspect", "Subsegmental-only PE"): {"ct.chronic-pe", "ct.subsegmental-only-pe"},
    ("rspect", "Acute and Chronic PE"): {"ct.acute-pe", "ct.chronic-pe"},
    ("brain-tumor", "glioma_tumor"): {"mri.glioma", "mri.brain-tumor"},
    ("brain-tumor", "meningioma_tumor"): {"mri.meningioma", "mri.brain-tumor"},
    ("brain-tumor", "pituitary_tumor"): {"mri.pituitary-tumor", "mri.brain-tumor"},
    ("brain-tumor-mri-7023", "glioma"): {"mri.glioma", "mri.brain-tumor"},
    ("brain-tumor-mri-7023", "meningioma"): {"mri.meningioma", "mri.brain-tumor"},
    ("brain-tumor-mri-7023", "pituitary"): {"mri.pituitary-tumor", "mri.brain-tumor"},
    # SNOMED CT 195080001 "atrial fibrillation and flutter": both rhythms coded at once
    ("georgia", "195080001"): {"ecg.afib", "ecg.aflutter"},
}


@pytest.fixture(scope="module")
def raw() -> dict:
    text = resources.files("medshard.schemas").joinpath("vocabulary.json").read_text(encoding="utf-8")
    return json.loads(text)


@pytest.fixture(scope="module")
def vocab() -> Vocabulary:
    return load_vocabulary()


def test_table_is_the_45_climb_datasets() -> None:
    assert len(TABLE7) == 45
    assert set(EXPECTED_MASK_SIZE) == set(TABLE7)


def test_file_validates_and_is_version_2(raw: dict, vocab: Vocabulary) -> None:
    data = VocabularyFile.model_validate(raw)
    assert data.version == "2.4.0"
    assert vocab.version == "2.4.0"
    # ASCII-only JSON: readable whatever the locale's default encoding
    resources.files("medshard.schemas").joinpath("vocabulary.json").read_bytes().decode("ascii")


# MultiMed sources outside CLIMB's table: slug -> (classes, mask size)
MULTIMED: dict[str, tuple[list[str], int]] = {
    "moabb-mi": (["left hand", "right hand", "feet", "tongue"], 4),
    "brain-tumor-mri-7023": (["glioma", "meningioma", "notumor", "pituitary"], 5),
    "kermany-oct": (["CNV", "DME", "DRUSEN", "NORMAL"], 4),
    "lhncbc-malaria": (["Parasitized", "Uninfected"], 2),
    "cc-ccii": (["NCP", "CP", "Normal"], 3),
    "pmc-image-text": ([], 0),  # figure-caption pairs: not classification
    "expression-atlas-scrna": ([], 0),  # open-ended cell types: source labels only
    "tcga-genomic": ([], 0),  # cancer types await concepts: source labels only
    "pdb-proteins": ([], 0),
}


def test_every_climb_slug_has_a_map_and_nothing_else(vocab: Vocabulary) -> None:
    assert set(vocab.data.sources) == set(TABLE7) | set(MULTIMED)


@pytest.mark.parametrize("slug", sorted(MULTIMED))
def test_multimed_source_classes_and_mask(vocab: Vocabulary, slug: str) -> None:
    classes, mask = MULTIMED[slug]
    assert set(vocab.data.sources[slug]) == set(classes)
    assert int(vocab.mask(slug).sum()) == mask
    assert vocab.data.notes[slug]


@pytest.mark.parametrize("slug", sorted(TABLE7))
def test_source_classes_are_exactly_what_its_adapter_emits(vocab: Vocabulary, slug: str) -> None:
    assert set(vocab.data.sources[slug]) == expected_source_classes(slug)


@pytest.mark.parametrize("slug", sorted(TABLE7))
def test_every_table7_class_is_mapped_or_documented(vocab: Vocabulary, slug: str) -> None:
    note = vocab.data.notes.get(slug, "")
    assert note, f"{slug} has no note"
    if TABLE7[slug] is None:
        assert vocab.data.sources[slug] == {}
        assert "no classes" in note
        return
    if slug in CHALLENGE_SETS:
        assert "never from CLIMB's coarse classes" in note
        return
    renames = TABLE7_TO_SOURCE.get(slug, {})
    for cls in TABLE7[slug]:
        concepts = vocab.map_classes(slug, renames.get(cls, [cls]))
        if not concepts:
            assert "Unmapped" in note and cls in note, f"{slug} {cls!r} unmapped without a note"


@pytest.mark.parametrize("slug", sorted(BUILTIN_SOURCES))
def test_builtin_source_label_space_is_its_vocabulary_map(vocab: Vocabulary, slug: str) -> None:
    # every class a built-in source can emit is in the map, and nothing else
    info = source_class(slug).info
    assert slug in vocab.data.sources, f"add a map for {slug} to vocabulary.json"
    assert set(info.label_space) == set(vocab.data.sources[slug])


def test_only_abcd_has_unmapped_classes(vocab: Vocabulary) -> None:
    unmapped = {
        (slug, cls)
        for slug, mapping in vocab.data.sources.items()
        for cls, targets in mapping.items()
        if not targets
    }
    no_concept = {r["snomed_ct_code"] for r in challenge_table() if not r["concepts"]}
    rhythms_and_axes = {
        (slug, code) for slug in CHALLENGE_SETS for code in challenge_codes(slug) & no_concept
    }
    assert unmapped == rhythms_and_axes


def test_lung_opacity_and_infiltration_are_one_concept(vocab: Vocabulary) -> None:
    assert vocab.map_classes("vindr-cxr", ["Infiltration"]) == ["cxr.lung-opacity"]
    assert vocab.map_classes("vindr-cxr", ["Lung Opacity"]) == ["cxr.lung-opacity"]
    assert vocab.map_classes("chexpert", ["Lung Opacity"]) == ["cxr.lung-opacity"]
    assert vocab.map_classes("mimic-cxr", ["Lung Opacity"]) == ["cxr.lung-opacity"]


def test_concept_ids_and_names_are_unique(vocab: Vocabulary) -> None:
    ids = vocab.concept_ids
    assert len(ids) == len(set(ids))
    names = [c.name for c in vocab.data.concepts]
    assert len(names) == len(set(names))


def test_no_concept_is_unused(vocab: Vocabulary) -> None:
    used = {t for m in vocab.data.sources.values() for ts in m.values() for t in ts}
    assert set(vocab.concept_ids) == used | set(vocab.unions)
    assert not used & set(vocab.unions)  # derived concepts are never mapped to


def test_concept_family_matches_its_single_modality(vocab: Vocabulary) -> None:
    allowed = set(Modality.__args__)
    for concept in vocab.data.concepts:
        family = concept.id.split(".", 1)[0]
        assert concept.modality == [FAMILY_MODALITY[family]], concept.id
        assert set(concept.modality) <= allowed


def test_each_source_stays_in_one_modality_family(vocab: Vocabulary) -> None:
    # 'Normal' etc. never cross modalities: a source only reaches its own family
    for slug, mapping in vocab.data.sources.items():
        families = {t.split(".", 1)[0] for ts in mapping.values() for t in ts}
        assert len(families) <= 1, (slug, families)


@pytest.mark.parametrize("slug", sorted(EXPECTED_MASK_SIZE))
def test_mask_size_per_source(vocab: Vocabulary, slug: str) -> None:
    mask = vocab.mask(slug)
    assert mask.shape == (len(vocab),)
    assert mask.dtype == np.float32
    assert int(mask.sum()) == EXPECTED_MASK_SIZE[slug]


def test_multi_concept_classes_are_exactly_the_documented_ones(vocab: Vocabulary) -> None:
    multi = {
        (slug, cls): set(targets)
        for slug, mapping in vocab.data.sources.items()
        for cls, targets in mapping.items()
        if len(targets) > 1
    }
    assert multi == MULTI_CONCEPT_CLASSES


# Classes that are a combination of concepts, so no single concept is named by them.
COMBINATION_CLASSES = {("inspect", "Acute Subsegmental-only PE"), ("rspect", "Acute and Chronic PE")}


def test_every_class_is_named_by_one_of_its_concepts(vocab: Vocabulary) -> None:
    by_id = {c.id: c for c in vocab.data.concepts}
    for slug, mapping in vocab.data.sources.items():
        for cls, targets in mapping.items():
            if cls.isdigit():  # a SNOMED CT code: named in docs/vocabulary.md, not a synonym
                continue
            if targets and (slug, cls) not in COMBINATION_CLASSES:
                spellings = {s for t in targets for s in [by_id[t].name, *by_id[t].synonyms]}
                assert cls in spellings, f"{slug} {cls!r} is not a name or synonym of {targets}"


@pytest.mark.parametrize(
    ("left", "right"),
    [
        (("ptb-xl", "AFIB"), ("georgia", "164889003")),
        (("ptb-xl", "AFLT"), ("georgia", "164890007")),
        (("ptb-xl", "STTC"), ("chapman-shaoxing", "59931005")),
        (("ptb-xl", "CD"), ("cpsc", "59118001")),
        (("ptb-xl", "MI"), ("georgia", "164865005")),
        (("ptb-xl", "HYP"), ("chapman-shaoxing", "55827005")),
        (("ptb-xl", "STTC"), ("cpsc", "429622005")),
        (("ptb-xl", "OTHER"), ("cpsc", "164884008")),
        (("tuev", "PLED"), ("iiic", "LPD")),
        (("tuev", "GPED"), ("iiic", "GPD")),
        (("vindr-cxr", "No finding"), ("chexpert", "No Finding")),
        (("covid-19", "Normal"), ("chexpert", "No Finding")),
        (("vindr-cxr", "Pleural effusion"), ("mimic-cxr", "Pleural Effusion")),
        (("vindr-mammo", "BI-RADS 4"), ("cbis-ddsm", "BI-RADS 4")),
        (("messidor-2", "None"), ("aptos-2019", "No DR")),
        (("messidor-2", "PDR"), ("jichi", "pdr")),
        (("ham10000", "mel"), ("pad-ufes-20", "MEL")),
        (("ham10000", "nv"), ("pad-ufes-20", "NEV")),
        (("inspect", "No PE"), ("rspect", "No PE")),
        (("covid-blues", "Has COVID"), ("covid-us", "covid")),
        (("brain-mri", "no"), ("brain-tumor", "no_tumor")),
        (("brain-tumor-mri-7023", "glioma"), ("brain-tumor", "glioma_tumor")),
        (("brain-tumor-mri-7023", "notumor"), ("brain-tumor", "no_tumor")),
    ],
)
def test_same_meaning_is_one_concept(vocab: Vocabulary, left: tuple, right: tuple) -> None:
    assert vocab.map_classes(left[0], [left[1]]) == vocab.map_classes(right[0], [right[1]])


@pytest.mark.parametrize(
    ("left", "right"),
    [
        (("ptb-xl", "NORM"), ("tuab", "normal")),
        (("ptb-xl", "AFIB"), ("ptb-xl", "AFLT")),  # two rhythms (CLIMB merged them)
        (("cpsc", "164889003"), ("cpsc", "164909002")),  # AF is not a conduction disturbance
        (("busi", "normal"), ("covid-us", "normal")),
        (("covid-blues", "No COVID"), ("covid-us", "normal")),
        (("ham10000", "akiec"), ("pad-ufes-20", "ACK")),
        (("iiic", "Other"), ("tuev", "BCKG")),
        (("abide", "Typical controls"), ("ppmi", "Control")),
        (("cmmd", "Malignant"), ("isic-2020", "malignant")),
        (("kits23", "malignant"), ("busi", "malignant")),
        (("coronahack", "Viral Pneumonia"), ("covid-us", "pneumonia")),
        (("messidor-2", "Mild DR"), ("jichi", "sdr")),
    ],
)
def test_different_meaning_stays_apart(vocab: Vocabulary, left: tuple, right: tuple) -> None:
    a = set(vocab.map_classes(left[0], [left[1]]))
    b = set(vocab.map_classes(right[0], [right[1]]))
    assert a and b and not a & b


def test_ptbxl_and_chexpert_concept_ids(vocab: Vocabulary) -> None:
    assert vocab.source_concepts("ptb-xl") == [
        "ecg.normal", "ecg.conduction-disturbance", "ecg.hypertrophy",
        "ecg.myocardial-infarction", "ecg.st-t-change", "ecg.afib", "ecg.aflutter", "ecg.other",
    ]
    assert vocab.map_classes("ptb-xl", ["AFIB", "AFLT"]) == ["ecg.afib", "ecg.aflutter"]
    assert vocab.source_concepts("chexpert") == [
        "cxr." + name.lower().replace(" ", "-") for name in CHEXPERT14
    ]


def test_chexpert_label_vector_is_masked_to_its_own_concepts(vocab: Vocabulary) -> None:
    labels = vocab.map_classes("chexpert", ["Edema", "Pleural Effusion"])
    hot = vocab.multi_hot(labels)
    mask = vocab.mask("chexpert")
    assert hot.sum() == 2
    assert np.all(hot <= mask)
    assert mask[vocab.index["cxr.tuberculosis"]] == 0  # CheXpert cannot say; VinDr can
    assert vocab.mask("vindr-cxr")[vocab.index["cxr.tuberculosis"]] == 1


@pytest.mark.parametrize("code", sorted(CHALLENGE_SNOMED))
def test_each_scored_snomed_code_maps_as_decided(vocab: Vocabulary, code: str) -> None:
    row = {r["snomed_ct_code"]: r for r in challenge_table()}[code]
    assert row["scored"] == "1"
    assert [c for c in row["concepts"].split(";") if c] == CHALLENGE_SNOMED[code]
    for slug in CHALLENGE_SETS:
        if code in challenge_codes(slug):
            assert vocab.map_classes(slug, [code]) == CHALLENGE_SNOMED[code]


def test_challenge_table_names_every_code_once_with_a_reason() -> None:
    rows = challenge_table()
    codes = [r["snomed_ct_code"] for r in rows]
    assert len(codes) == len(set(codes)) == 133  # 30 scored + 103 unscored (evaluation-2021)
    assert {r["snomed_ct_code"] for r in rows if r["scored"] == "1"} == set(CHALLENGE_SNOMED)
    assert all(r["note"].strip() for r in rows)


@pytest.mark.parametrize("slug", CHALLENGE_SETS)
def test_challenge_maps_are_the_table(vocab: Vocabulary, slug: str) -> None:
    table = {r["snomed_ct_code"]: [c for c in r["concepts"].split(";") if c]
             for r in challenge_table()}
    assert vocab.data.sources[slug] == {c: table[c] for c in challenge_codes(slug)}


# Unscored codes decided by their PTB-XL statement of the same meaning (docs/vocabulary.md).
UNSCORED_DECISIONS = {
    "164865005": ["ecg.myocardial-infarction"],  # myocardial infarction
    "164867002": ["ecg.myocardial-infarction"],  # old myocardial infarction
    "164873001": ["ecg.hypertrophy"],  # LVH
    "55827005": ["ecg.hypertrophy"],  # LV high voltage = PTB-XL VCLVH
    "429622005": [STTC], "164931005": [STTC],  # ST depression / elevation
    "428750005": [STTC], "164861001": [STTC],  # nonspecific ST-T, ischemia
    "164884008": [OTHER],  # ventricular ectopics = PTB-XL PVC
    "27885002": [CD], "445211001": [CD],  # complete heart block, LPFB
    "195080001": ["ecg.afib", "ecg.aflutter"],
    "713422000": [], "164896001": [], "53741008": [],  # AT, VF, coronary heart disease
}


@pytest.mark.parametrize("code", sorted(UNSCORED_DECISIONS))
def test_unscored_codes_map_as_decided(code: str) -> None:
    row = {r["snomed_ct_code"]: r for r in challenge_table()}[code]
    assert row["scored"] == "0"
    assert [c for c in row["concepts"].split(";") if c] == UNSCORED_DECISIONS[code]


def test_sinus_rhythm_codes_are_never_normal(vocab: Vocabulary) -> None:
    # CLIMB's table calls these 'Normal'; a rhythm alone is not a normal ECG
    rhythms = {"426783006", "427084000", "426177001", "427393009"}
    for slug in CHALLENGE_SETS:
        assert vocab.map_classes(slug, sorted(rhythms & challenge_codes(slug))) == []
        assert vocab.mask(slug)[vocab.index["ecg.normal"]] == 0


def test_climb_union_is_derived_from_afib_and_aflutter(vocab: Vocabulary) -> None:
    assert vocab.unions == {"ecg.afib-aflutter": ["ecg.afib", "ecg.aflutter"]}
    assert vocab.mask("ptb-xl")[vocab.index["ecg.afib-aflutter"]] == 0
    data = vocab.data.model_dump()
    data["sources"]["ptb-xl"]["AFIB"] = ["ecg.afib-aflutter"]
    with pytest.raises(ValueError, match="derived concept"):
        Vocabulary.from_dict(data)


def test_tuev_spsw_and_mimic_48h_say_what_they_mean(vocab: Vocabulary) -> None:
    by_id = {c.id: c for c in vocab.data.concepts}
    assert vocab.map_classes("tuev", ["SPSW"]) == ["eeg.spike-or-sharp-wave"]
    assert "sharp wave" in by_id["eeg.spike-or-sharp-wave"].name
    assert "within 48 hours of admission" in by_id["ehr.in-hospital-death-48h"].description


def test_unknown_class_is_an_error(vocab: Vocabulary) -> None:
    with pytest.raises(UnknownClass):
        vocab.map_classes("chexpert", ["Infiltration"])
