"""A miniature TUH EEG Events Corpus (TUEV) in its real layout: EDF files plus `.rec` annotations.

Layout (v2.0.x): `edf/train/<subject>/<subject>_<NNNNNNNN>.edf` and
`edf/eval/<NNN>/<class>_<NNN>_a_.edf`, each with a same-stem `.rec`
(`channel,start,stop,label`; channel = TCP montage number 0-21, label 1-6).

Signals are built exactly as the TUAB demo's (see `medshard.sources.eeg.tuab_fixture`): each
electrode is the real single-channel EEG shipped in pyedflib's test data,
resampled to 250 Hz (TUEV's usual rate) and started at its own offset; the
channels are therefore real EEG but not truly simultaneous. The events are
illustrative: their times and classes are made up, not annotations of this
signal. They are placed to cover edge padding (an event in the first and one in
the last 2 s), a 2-s event, and one span annotated on two channels, one of them
outside the 16-channel montage (T4-A2).
"""

from __future__ import annotations

from pathlib import Path

from medshard.sources.eeg.tuab_fixture import write_session

# (relative stem, duration_s, [(channel, start_s, stop_s, label_code), ...])
DEMO_SESSIONS: tuple[tuple[str, int, tuple[tuple[int, float, float, int], ...]], ...] = (
    (
        "edf/train/00000254/00000254_00000001",
        40,
        (
            (13, 0.5, 1.5, 6),
            (0, 10.0, 11.0, 1),
            (14, 10.0, 11.0, 1),
            (5, 20.4, 21.4, 4),
            (2, 25.0, 27.0, 3),
            (9, 38.6, 39.6, 5),
        ),
    ),
    (
        "edf/train/00000629/00000629_00000002",
        30,
        ((4, 3.0, 4.0, 2), (18, 12.0, 13.0, 2), (21, 22.0, 23.0, 6)),
    ),
    (
        "edf/train/00001113/00001113_00000001",
        20,
        ((7, 5.0, 6.0, 4), (3, 14.0, 15.0, 5)),
    ),
    ("edf/eval/032/bckg_032_a_", 20, ((1, 4.0, 5.0, 6), (15, 9.0, 10.0, 6))),
    ("edf/eval/017/spsw_017_a_", 25, ((6, 8.0, 9.0, 1), (20, 16.0, 17.0, 3))),
)


def format_rec(events: tuple[tuple[int, float, float, int], ...]) -> str:
    """The text of a `.rec` file: one `channel,start,stop,label` line per event."""
    return "".join(f"{ch},{start:.4f},{stop:.4f},{code}\n" for ch, start, stop, code in events)


def write_raw(root: Path, *, rate_hz: int = 250) -> Path:
    """Write the miniature TUEV tree under `root` (the source root); returns root.

    Five sessions from five subject folders (three train, two eval), 20-40 s each,
    with 15 annotated events in all.
    """
    for i, (stem, duration, events) in enumerate(DEMO_SESSIONS):
        edf = write_session(
            root / f"{stem}.edf", duration_s=duration, rate_hz=rate_hz, offset_s=71.0 * i
        )
        edf.with_suffix(".rec").write_text(format_rec(events), encoding="ascii")
    return root


BROKEN_SESSION = "edf/train/00009999/00009999_00000001"
# a whole EDF whose .rec names TCP channel 22 (the montage has 0-21)
BAD_CHANNEL_SESSION = "edf/train/00009998/00009998_00000001"
BAD_CHANNEL_REC = "3,5.0000,6.0000,1\n22,8.0000,9.0000,6\n"


def write_fixture(root: Path) -> Path:
    """The miniature plus one broken record: an event file whose EDF is cut in its header."""
    write_raw(root)
    stem, _, events = DEMO_SESSIONS[0]
    whole = (root / f"{stem}.edf").read_bytes()
    (root / BROKEN_SESSION).parent.mkdir(parents=True, exist_ok=True)
    (root / f"{BROKEN_SESSION}.edf").write_bytes(whole[:700])
    (root / f"{BROKEN_SESSION}.rec").write_text(format_rec(events), encoding="ascii")
    edf = write_session(root / f"{BAD_CHANNEL_SESSION}.edf", duration_s=20, rate_hz=250)
    edf.with_suffix(".rec").write_text(BAD_CHANNEL_REC, encoding="ascii")
    return root


def _fixture():
    from medshard.sources.eeg.tuab_fixture import PHI_MARKERS
    from medshard.testing.fixture import Fixture

    return Fixture(
        write=write_fixture,
        samples={"train": 6, "val": 5, "test": 4},
        quarantined={"00009999_00000001": "load", "00009998_00000001": "load"},
        phi_markers=PHI_MARKERS,
        real="one real EEG channel (pyedflib's `test_utf8.edf`), written as TUH-layout EDF "
        "with a real EDF writer",
        illustrative="every electrode is that trace at a different offset; events, labels, "
        "header identities; a truncated session and one whose .rec names channel 22 "
        "(quarantined)",
    )


FIXTURE = _fixture()
