"""medshard.formats.edf, checked against MNE's independent EDF reader.

Input: a TUH-layout EDF+ session written from the real EEG in pyedflib's test data
(medshard.sources.eeg.tuab_fixture), its header filled with identity values.
"""

from __future__ import annotations

import gc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import mne
import numpy as np
import pytest

from medshard.formats.edf import EdfFile, microvolts_per_unit, open_count
from medshard.schemas import RecordError
from medshard.sources.eeg.tuab_fixture import IDENTITY, write_session


@pytest.fixture(scope="module")
def session(tmp_path_factory) -> Path:
    return write_session(tmp_path_factory.mktemp("edf") / "s001.edf", duration_s=30)


@pytest.fixture(scope="module")
def cut_short(session, tmp_path_factory) -> Path:
    """The session without its second half: EDFlib refuses to open it."""
    path = tmp_path_factory.mktemp("edf-short") / "short.edf"
    data = session.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _mne_microvolts(path: Path, index: int) -> np.ndarray:
    raw = mne.io.read_raw_edf(path, preload=True, verbose="error")
    return raw.get_data(picks=[index])[0] * 1e6


def test_signals_and_values_equal_mnes_reading(session):
    raw = mne.io.read_raw_edf(session, preload=True, verbose="error")
    with EdfFile(session) as edf:
        assert [s.label for s in edf.signals] == raw.ch_names
        assert {s.rate_hz for s in edf.signals} == {raw.info["sfreq"]}
        assert {s.n_samples for s in edf.signals} == {raw.n_times}
        assert {s.unit for s in edf.signals} == {"uV"}
        for sig in edf.signals[:4]:
            got = edf.read(sig.index, 1000, 2000) * microvolts_per_unit(sig.unit)
            # MNE returns volts
            np.testing.assert_allclose(got, raw.get_data(picks=[sig.index])[0, 1000:3000] * 1e6,
                                       rtol=1e-9, atol=1e-9)


def test_files_of_one_path_share_one_reader_and_release_it(session):
    before = open_count()
    a, b = EdfFile(session), EdfFile(session)  # EDFlib alone refuses the second open
    assert open_count() == before + 1
    np.testing.assert_array_equal(a.read(0, 0, 100), b.read(0, 0, 100))
    a.close()
    assert open_count() == before + 1
    with EdfFile(session) as c:
        np.testing.assert_array_equal(b.read(0, 0, 10), c.read(0, 0, 10))
    b.close()
    assert open_count() == before
    with pytest.raises(ValueError, match="was closed"):
        a.read(0, 0, 10)


def test_reads_from_many_threads_equal_reads_from_one(session, cut_short):
    """Beam runs bundles in threads; some files of a corpus are broken. A broken file's
    failed open must not disturb the reads of the files open in other threads."""
    with EdfFile(session) as edf:
        expected = [edf.read(i, 0, 7680) for i in range(4)]

    def read(i: int) -> np.ndarray | None:
        if i % 3 == 2:
            with pytest.raises(RecordError):
                EdfFile(cut_short)
            gc.collect()
            return None
        with EdfFile(session) as edf:
            return edf.read(i % 4, 0, 7680)

    with ThreadPoolExecutor(max_workers=4) as pool:
        for _ in range(5):
            for i, got in enumerate(pool.map(read, range(60))):
                if got is not None:
                    np.testing.assert_array_equal(got, expected[i % 4])


def test_a_file_that_fails_to_open_leaves_the_open_files_readable(session, cut_short):
    # pyedflib's half-opened reader closes EDFlib handle 0 when it is freed: the file
    # open first (handle 0) read zeros afterwards
    with EdfFile(session) as edf:
        for _ in range(3):
            with pytest.raises(RecordError, match="cannot read EDF short.edf"):
                EdfFile(cut_short)
            gc.collect()
        np.testing.assert_allclose(edf.read(0, 0, 7680), _mne_microvolts(session, 0),
                                   rtol=1e-9, atol=1e-9)


def test_a_read_that_fails_is_an_error_not_zeros(session):
    from pyedflib._extensions._pyedflib import close_file

    with EdfFile(session) as edf:
        close_file(edf._reader.handle)  # the file goes away under the reader
        with pytest.raises(RecordError, match=r"^EDF s001.edf: reading samples 0..100 of "
                                              r"signal 0 failed"):
            edf.read(0, 0, 100)
    with pytest.raises(ValueError, match="no samples"):
        with EdfFile(session) as edf:
            edf.read(0, 7600, 100)


def test_a_file_that_is_not_edf_is_one_line_and_holds_nothing_open(tmp_path):
    bad = tmp_path / "bad.edf"
    bad.write_bytes(b"0       this is not an EDF header" * 10)
    before = open_count()
    with pytest.raises(RecordError, match=r"^cannot read EDF bad.edf: .*re-download") as err:
        EdfFile(bad)
    assert "\n" not in str(err.value) and open_count() == before


def test_no_identity_field_of_the_header_leaves_the_reader(session):
    with EdfFile(session) as edf:
        exposed = repr(edf.signals) + repr(vars(edf))
    for field in ("patientname", "patientcode", "technician", "equipment", "admincode",
                  "patient_additional", "recording_additional"):
        assert str(IDENTITY[field]) not in exposed


@pytest.mark.parametrize(("unit", "factor"), [("uV", 1.0), ("µV", 1.0), ("mV", 1e3),
                                              (" V ", 1e6), ("nV", 1e-3), ("mmHg", None)])
def test_voltage_units_scale_to_microvolts(unit, factor):
    assert microvolts_per_unit(unit) == factor
