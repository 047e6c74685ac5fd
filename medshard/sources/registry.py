"""Registry of sources: built-ins plus any package exposing the `medshard.sources` entry point.

A third-party package adds a source with, in its pyproject.toml:

    [project.entry-points."medshard.sources"]
    my-dataset = "my_package.my_module:MyDataset"
"""

from __future__ import annotations

import importlib
from functools import lru_cache
from importlib.metadata import entry_points

from medshard.sources.base import Source

# slug -> "module:Class"; imported lazily so listing sources stays cheap.
BUILTIN_SOURCES: dict[str, str] = {
    "ptb-xl": "medshard.sources.ecg.ptbxl:PTBXL",
    "chexpert": "medshard.sources.cxr.chexpert:CheXpert",
    "kits23": "medshard.sources.ct.kits23:KiTS23",
    "echonet-dynamic": "medshard.sources.ultrasound.echonet:EchoNetDynamic",
    "vindr-cxr": "medshard.sources.cxr.vindr_cxr:VinDrCXR",
    "tuab": "medshard.sources.eeg.tuab:TUAB",
    "tuev": "medshard.sources.eeg.tuev:TUEV",
    "cpsc": "medshard.sources.ecg.challenge:CPSC2018",
    "georgia": "medshard.sources.ecg.challenge:Georgia",
    "chapman-shaoxing": "medshard.sources.ecg.challenge:ChapmanShaoxing",
    "moabb-mi": "medshard.sources.eeg.moabb_mi:BCICompetitionIV2a",
    "hugadb": "medshard.sources.imu.hugadb:HuGaDB",
    "iiic": "medshard.sources.eeg.iiic:IIIC",
    "mimic-cxr": "medshard.sources.cxr.mimic_cxr:MIMICCXR",
    "coronahack": "medshard.sources.cxr.coronahack:CoronaHack",
    "covid-19": "medshard.sources.cxr.covid19:Covid19",
    "brain-tumor": "medshard.sources.mri.brain_tumor:BrainTumor",
    "brain-mri": "medshard.sources.mri.brain_mri:BrainMRI",
    "brain-tumor-mri-7023": "medshard.sources.mri.brain_tumor_mri_7023:BrainTumorMRI7023",
    "vindr-mammo": "medshard.sources.mammo.vindr_mammo:VinDrMammo",
    "cbis-ddsm": "medshard.sources.mammo.cbis_ddsm:CBISDDSM",
    "cmmd": "medshard.sources.mammo.cmmd:CMMD",
    "lc25000": "medshard.sources.pathology.lc25000:LC25000",
    "busi": "medshard.sources.ultrasound.busi:BUSI",
    "kermany-oct": "medshard.sources.oct.kermany:KermanyOCT",
    "lhncbc-malaria": "medshard.sources.microscopy.malaria:LHNCBCMalaria",
    "bcss": "medshard.sources.pathology.bcss:BCSS",
    "ham10000": "medshard.sources.derm.ham10000:HAM10000",
    "isic-2020": "medshard.sources.derm.isic2020:ISIC2020",
    "pad-ufes-20": "medshard.sources.derm.pad_ufes20:PADUFES20",
    "aptos-2019": "medshard.sources.fundus.aptos2019:APTOS2019",
    "messidor-2": "medshard.sources.fundus.messidor2:Messidor2",
    "jichi": "medshard.sources.fundus.jichi:Jichi",
    "lndb": "medshard.sources.ct.lndb:LNDb",
    "inspect": "medshard.sources.ct.inspect_ctpa:INSPECT",
    "hemorrhage": "medshard.sources.ct.hemorrhage:Hemorrhage",
    "cc-ccii": "medshard.sources.ct.cc_ccii:CCCCII",
    "abide": "medshard.sources.brain_networks.abide:ABIDE",
    "abcd": "medshard.sources.brain_networks.abcd:ABCD",
    "ppmi": "medshard.sources.brain_networks.ppmi:PPMI",
    "vital": "medshard.sources.text.vital:BioMedVital",
    "pmc-image-text": "medshard.sources.text.pmc_image_text:PMCImageText",
    "expression-atlas-scrna": "medshard.sources.omics.scxa:ScExpressionAtlas",
    "expression-atlas": "medshard.sources.omics.expression_atlas:ExpressionAtlas",
    "geo": "medshard.sources.omics.geo:GEO",
    "tcga-genomic": "medshard.sources.omics.tcga:TCGAGenomic",
    "rspect": "medshard.sources.ct.rspect:RSPECT",
    "proteins": "medshard.sources.graphs.proteins:Proteins",
    "ppi": "medshard.sources.graphs.ppi:PPI",
    "pdb-proteins": "medshard.sources.structures.pdb_proteins:PDBProteins",
    "mimic-iv": "medshard.sources.ehr.mimic_iv:MIMICIV",
    "cholec80": "medshard.sources.video.cholec80:Cholec80",
    "covid-blues": "medshard.sources.ultrasound.covid_blues:CovidBlues",
    "covid-us": "medshard.sources.ultrasound.covid_us:CovidUS",
}


class UnknownSource(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; this one is for people
        return str(self.args[0])


def _import(target: str) -> type[Source]:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


@lru_cache(maxsize=1)
def _registry() -> dict[str, str]:
    found = dict(BUILTIN_SOURCES)
    for ep in entry_points(group="medshard.sources"):
        found.setdefault(ep.name, ep.value)
    return found


def available_sources() -> list[str]:
    return sorted(_registry())


def source_class(slug: str) -> type[Source]:
    reg = _registry()
    if slug not in reg:
        raise UnknownSource(
            f"unknown source {slug!r}; run `medshard sources` to list the {len(reg)} available"
        )
    cls = _import(reg[slug])
    if cls.info.name != slug:
        raise RuntimeError(f"source registered as {slug!r} declares name {cls.info.name!r}")
    return cls


def get_source(slug: str, **options) -> Source:
    return source_class(slug)(**options)
