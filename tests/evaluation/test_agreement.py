"""The agreement metric of conditional generators (chainer_dcgan.evaluation.agreement) and tools/evaluate.py --classifier."""
import itertools
import json

import numpy
import pytest
from conftest import run_script

from chainer_dcgan.evaluation import agreement
from chainer_dcgan.models.serialization import save_model
from chainer_dcgan.training import seeded_models
from chainer_dcgan.zspace import generate, sample_z, tagging

TAGS = ["blonde_hair", "blue_hair"]
TAG_SETS = numpy.array([[1, 0], [0, 1], [0, 0]], numpy.float32)  # one hair colour at a time, or none


def test_roc_auc_counts_pairs_with_ties_as_half():
    rs = numpy.random.RandomState(0)
    pos, neg = rs.randint(0, 5, 13).astype(float), rs.randint(0, 5, 17).astype(float)
    pairs = [1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg)]
    assert agreement.roc_auc(pos, neg) == pytest.approx(numpy.mean(pairs))
    assert agreement.roc_auc([2, 3], [0, 1]) == 1.0 and agreement.roc_auc([0], [0]) == 0.5


def _obedient_generator(strength):
    """A conditional G whose tag offsets are large and random: y decides much of each face."""
    gen = seeded_models(0, TAGS)[0]
    rs = numpy.random.RandomState(1)
    for bn in (gen.bn0l, gen.bn1, gen.bn2, gen.bn3):
        bn.beta_y.array[:] = rs.normal(0, strength, bn.beta_y.shape)
    return gen


@pytest.fixture(scope="module")
def reader():
    """A tag classifier trained on faces of the obedient G labelled with the y they were made from."""
    gen = _obedient_generator(2.0)
    rs = numpy.random.RandomState(2)
    y = TAG_SETS[rs.randint(0, 3, 240)]
    faces = generate(gen, sample_z(240, random_state=rs), y=y)
    return tagging.train_tag_classifier(faces, y.astype(numpy.int32), TAGS, epochs=4, seed=0, width=8, downscale=4)


def test_agreement_is_high_when_y_is_obeyed_and_falls_when_it_is_shuffled_or_ignored(reader):
    obedient = _obedient_generator(2.0)
    agree = agreement.conditional_agreement(obedient, reader, TAG_SETS, n=150, seed=3)
    control = agreement.conditional_agreement(obedient, reader, TAG_SETS, n=150, seed=3, shuffle=True)
    ignoring = agreement.conditional_agreement(seeded_models(0, TAGS)[0], reader, TAG_SETS, n=150, seed=3)
    assert [a.name for a in agree] == TAGS and agree[0].n_on + agree[0].n_off == 150
    print(agreement.format_agreement_table(agree, control))
    assert agreement.mean_balanced(agree) > 0.85 and agreement.mean_auc(agree) > 0.9
    assert agreement.mean_balanced(control) < 0.65 and agreement.mean_auc(control) < 0.65
    assert agreement.mean_auc(ignoring) < 0.65  # zero offsets: G ignores y
    for a in agree:
        assert a.p_on > a.p_off and a.balanced == pytest.approx((a.p_on + 1 - a.p_off) / 2)


def test_evaluate_cli_reports_agreement(reader, tmp_path):
    model, clf = tmp_path / "gen.npz", tmp_path / "clf.npz"
    save_model(str(model), _obedient_generator(2.0))
    tagging.save_classifier(str(clf), reader)
    proc = run_script("tools/evaluate.py", "--model", model, "--classifier", clf, "--no-fid", "--agreement-n", 60,
                      "--synthetic-size", 200, "--json")
    result = json.loads(proc.stdout)["agreement"]
    assert set(result["tags"]) == set(TAGS) and result["chance"] == 0.5
    assert result["mean_balanced"] > result["shuffled_mean_balanced"]
    # the classifier read G's faces, not real ones: its accuracy on real faces is reported as it is
    assert set(result["classifier_balanced_accuracy"]) == set(TAGS)
    text = run_script("tools/evaluate.py", "--model", model, "--classifier", clf, "--no-fid", "--agreement-n", 30,
                      "--synthetic-size", 200).stdout
    assert "mean balanced accuracy" in text and "y-shuffled control" in text
    faithful = tmp_path / "faithful.npz"
    save_model(str(faithful), seeded_models(0)[0])
    proc = run_script("tools/evaluate.py", "--model", faithful, "--classifier", clf, "--no-fid", check=False)
    assert proc.returncode != 0 and "not one" in proc.stderr


def test_a_classifier_of_another_size_is_refused_by_name(reader, tmp_path):
    small = seeded_models(0, TAGS, size=64)[0]
    with pytest.raises(ValueError, match="reads 96x96 faces but the generator draws 64x64"):
        agreement.conditional_agreement(small, reader, TAG_SETS, n=10)
    with pytest.raises(ValueError, match="reads 96x96 faces"):
        agreement.steering_share(seeded_models(0, size=64)[0], reader, [], n=4)
    model, clf = tmp_path / "gen64.npz", tmp_path / "clf.npz"
    save_model(str(model), small)
    tagging.save_classifier(str(clf), reader)
    proc = run_script("tools/evaluate.py", "--model", model, "--classifier", clf, "--no-fid", "--agreement-n", 20,
                      "--synthetic-size", 50, check=False)
    assert proc.returncode == 2 and proc.stderr.startswith("error: the tag classifier reads 96x96")
    assert "Traceback" not in proc.stderr
