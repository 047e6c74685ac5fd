"""What a source's declared terms allow: redistribution, and the build's license filter.

Both read only `Source.info` (and the declared download spec), never raw files, so a
filtered build drops sources before anything is read, and `publish` can refuse a release
from its manifest alone.
"""

from __future__ import annotations

from typing import Any

from medshard.schemas import SourceInfo

# terms a user can say they honour with `medshard build --license-allow`
LICENSE_TERMS = ("commercial", "non-commercial", "share-alike", "credentialed", "no-redistribution")
ACCESS_KINDS = ("open", "registration", "credentialed", "manual")


def redistribution_barrier(info: SourceInfo, download: Any = None) -> str | None:
    """Why the source's terms forbid redistributing its data (or anything derived), or None.

    Open licences that allow derivatives (CC-BY, CC-BY-SA, CC-BY-NC(-SA), CC0, ...) allow
    redistribution under their conditions; credentialed or data-use-agreement access,
    Kaggle competition rules, no-derivatives licences and custom terms without an SPDX id
    do not.
    """
    lic = info.license
    if lic.credentialed or info.access == "credentialed":
        return f"credentialed access under {lic.name}"
    if info.access == "manual":
        return f"data use agreement ({lic.name}) granted per person"
    if download is not None and getattr(download, "competition", None):
        return "Kaggle competition rules"
    if lic.spdx is None:
        return f"custom terms ({lic.name}) that do not grant redistribution"
    if "-ND" in lic.spdx.upper():
        return f"no-derivatives licence {lic.spdx}"
    return None


def term_kinds(info: SourceInfo, download: Any = None) -> list[str]:
    """The restrictions a source carries, as `--license-allow` names them."""
    lic = info.license
    kinds = ["non-commercial" if lic.non_commercial else "commercial"]
    if lic.share_alike:
        kinds.append("share-alike")
    if lic.credentialed or info.access == "credentialed":
        kinds.append("credentialed")
    if redistribution_barrier(info, download):
        kinds.append("no-redistribution")
    return kinds


def filter_exclusion(
    info: SourceInfo,
    download: Any,
    license_allow: list[str] | None,
    access_allow: list[str] | None,
) -> str | None:
    """Why the filter excludes the source, or None when it is kept.

    `license_allow` lists the terms the user can honour; `commercial` is the baseline
    (sources free for any use), each other term admits sources that carry it.
    """
    if access_allow is not None and info.access not in access_allow:
        return f"access {info.access} not in --access {','.join(access_allow)}"
    if license_allow is not None:
        allowed = set(license_allow) | {"commercial"}
        missing = [k for k in term_kinds(info, download) if k not in allowed]
        if missing:
            return f"terms {', '.join(missing)} not in --license-allow {','.join(license_allow)}"
    return None
