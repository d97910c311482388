"""The benchmark's target and graphs from SMILES, and the data errors."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from paperlab.gnn.data import (
    ATOM_INDEX,
    build_zinc,
    load_pyg_zinc,
    load_zinc,
    penalized_logp,
    ring_terms,
    smiles_to_data,
    target_terms,
)

FIXTURE = Path(__file__).parent / "fixtures" / "zinc_official_y.csv"


def _official():
    with open(FIXTURE) as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


@pytest.mark.parametrize("row", _official(), ids=lambda r: r["split_pos"])
def test_rdkit_target_reproduces_the_official_y(row):
    from rdkit import Chem

    y = penalized_logp(*target_terms(Chem.MolFromSmiles(row["smiles"])))
    assert y == pytest.approx(float(row["y"]), abs=1e-5)


def test_long_ring_penalty_counts_cycle_basis_cycles():
    from rdkit import Chem

    # a fused tricycle whose networkx cycle basis holds a 12-cycle: penalty 6 (official y = -20.34)
    smiles = "CCCCCCNC(=O)c1c([O-])n2c3c(cccc3c1=O)CCC2"
    assert target_terms(Chem.MolFromSmiles(smiles))[2] == 6
    assert target_terms(Chem.MolFromSmiles("c1ccccc1"))[2] == 0
    assert target_terms(Chem.MolFromSmiles("C1CCCCCCC1"))[2] == 2  # cyclooctane


def test_ring_terms_separate_real_large_rings_from_cycle_basis_envelopes():
    from rdkit import Chem

    assert ring_terms(Chem.MolFromSmiles("C1CCCCCCC1")) == (2, 8)  # cyclooctane: a real 8-ring
    assert ring_terms(Chem.MolFromSmiles("c1ccccc1")) == (0, 6)
    # adamantane: only 6-rings, but the target's cycle basis holds an 8-cycle around two of them
    assert ring_terms(Chem.MolFromSmiles("C1C2CC3CC1CC(C2)C3")) == (2, 6)


def test_graph_of_a_molecule_uses_the_benchmark_dictionaries():
    d = smiles_to_data("c1cc[nH]c1C[NH3+]", y=0.0)
    assert d.x.tolist().count(ATOM_INDEX["N"]) == 1  # aromatic [nH] is plain N in the dictionary
    assert ATOM_INDEX["N H3 +"] in d.x.tolist()
    assert d.edge_index.shape == (2, 14) and set(d.edge_attr.tolist()) == {1, 2}  # kekulized: no aromatic bonds
    assert (d.edge_attr == 2).sum() == 4  # two double bonds, both directions
    benzene = smiles_to_data("c1ccccc1", y=0.0)
    assert benzene.x.tolist() == [0] * 6 and sorted(benzene.edge_attr.tolist()) == [1] * 6 + [2] * 6
    assert smiles_to_data("[C@@H](F)(Cl)Br", y=0.0).x[0] == ATOM_INDEX["C H1"]


def test_atom_outside_the_dictionary_is_refused_with_its_symbol():
    with pytest.raises(ValueError, match="'Si'"):
        smiles_to_data("C[Si](C)(C)C", y=0.0)


def _zinc_folder(tmp_path: Path, smiles: list[str]) -> Path:
    (tmp_path / "zinc12k_smiles_score.csv").write_text(
        "SMILES,SA,logp,score\n" + "".join(f"{s},0,0,0\n" for s in smiles)
    )
    n = len(smiles)
    (tmp_path / "zinc12k_split_rows.csv").write_text(
        "train,val,test\n" + "".join(f"{i},{n - 2},{n - 1}\n" if i == 0 else f"{i},,\n" for i in range(n - 2))
    )
    return tmp_path


def test_unparsable_smiles_are_skipped_and_counted(tmp_path):
    folder = _zinc_folder(tmp_path, ["CCO", "C1CC", "c1ccccc1O", "CCN", "CCC"])
    splits, stats = build_zinc(folder)
    assert stats["skipped"] == 1 and stats["skipped_smiles"] == ["C1CC"]
    assert [len(splits[k]) for k in ("train", "val", "test")] == [2, 1, 1]
    # the cache is built once and loads the same graphs
    cached = load_zinc(folder, tmp_path / "cache")
    assert (
        torch.equal(cached["train"][1].x, splits["train"][1].x) and (tmp_path / "cache" / "zinc12k_rdkit.pt").exists()
    )


def test_missing_data_names_the_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="zinc12k_smiles_score.csv"):
        build_zinc(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"raw/train\.pickle.*raw/test\.index.*molecules\.zip"):
        load_pyg_zinc(tmp_path / "nowhere")
