"""Tag classifier and tag vectors, on synthetic faces whose tags are known exactly.

A trained DCGAN would take minutes to make; instead a stand-in "generator" (a real Chainer link)
draws synthetic faces whose hair length follows ``z[0]`` and hair colour ``z[1]``, so a working
``tag_vectors`` must find those axes and a working vector must make the classifier see more of its tag.
"""
import json

import chainer
import numpy
import pytest

import chainer_dcgan  # noqa: F401  (installs the chainer shims)
from chainer_dcgan import zspace
from chainer_dcgan.datasets.synthetic import draw_face, face_random_state, write_dataset
from chainer_dcgan.utils.images import to_array
from chainer_dcgan.zspace import tagging

TAGS = ["short_hair", "long_hair", "blonde_hair", "black_hair"]
LENGTHS = ("short_hair", "long_hair", "very_long_hair")
COLOURS = ("blonde_hair", "black_hair", "brown_hair", "pink_hair")


class HairStandIn(chainer.Link):
    """``z float32 (N, 100) -> float32 (N, 3, 96, 96)`` synthetic faces, like a Generator.

    Hair is long when ``z[0] >= 0`` (short otherwise) and blonde when ``z[1] >= 0`` (black otherwise);
    ``z[2]`` picks one of ``identities`` faces for everything else, so no other axis matters.
    """

    z_dim = 100

    def __init__(self, identities=16, seed=5):
        super().__init__()
        self.identities, self.seed = identities, seed
        self._faces = {}

    def _face(self, length, colour, identity):
        key = (length, colour, identity)
        if key not in self._faces:
            image, tags = draw_face(face_random_state(self.seed, identity), require=(length, colour))
            assert length in tags and colour in tags
            self._faces[key] = to_array(image)
        return self._faces[key]

    def forward(self, z):
        z = chainer.as_array(z)
        faces = []
        for row in z:
            identity = min(int((row[2] + 1) / 2 * self.identities), self.identities - 1)
            faces.append(self._face("long_hair" if row[0] >= 0 else "short_hair",
                                    "blonde_hair" if row[1] >= 0 else "black_hair", identity))
        return chainer.Variable(numpy.stack(faces))


def draw_balanced(n, seed):
    """``n`` faces with hair length and colour drawn evenly from LENGTHS x COLOURS: images, labels (n, 4)."""
    rs = numpy.random.RandomState(seed)
    images = numpy.empty((n, 96, 96, 3), numpy.uint8)
    labels = numpy.zeros((n, len(TAGS)), numpy.int32)
    for i in range(n):
        require = (LENGTHS[rs.randint(3)], COLOURS[rs.randint(4)])
        images[i], tags = draw_face(face_random_state(seed, i), require=require)
        labels[i] = [t in tags for t in TAGS]
    return images, labels


@pytest.fixture(scope="module")
def faces():
    return draw_balanced(300, seed=21)


@pytest.fixture(scope="module")
def classifier(faces):
    images, labels = faces
    return tagging.train_tag_classifier(images[:240], labels[:240], TAGS, epochs=6, batch_size=40, seed=0,
                                        width=16, downscale=3, alpha=3e-3)


@pytest.fixture(scope="module")
def stand_in():
    return HairStandIn()


@pytest.fixture(scope="module")
def vectors(stand_in, classifier):
    return tagging.tag_vectors(stand_in, classifier, n=300, seed=0, min_count=20)


def test_classifier_learns_well_above_chance(faces, classifier):
    images, labels = faces
    ev = tagging.evaluate_classifier(classifier, images[240:], labels[240:])
    assert set(ev) == {"accuracy", "baseline", "balanced"}
    assert ev["balanced"].min() > 0.7, ev  # chance: 0.5
    assert ev["balanced"][2:].min() > 0.95, ev  # hair colour covers a large area: nearly perfect
    assert ev["accuracy"].mean() > ev["baseline"].mean() + 0.1, ev


def test_classifier_training_is_deterministic(faces):
    images, labels = faces
    a = tagging.train_tag_classifier(images[:40], labels[:40], TAGS, epochs=1, seed=3, width=4, downscale=4)
    b = tagging.train_tag_classifier(images[:40], labels[:40], TAGS, epochs=1, seed=3, width=4, downscale=4)
    numpy.testing.assert_array_equal(a.predict_proba(images[40:50]), b.predict_proba(images[40:50]))


def test_predict_proba_takes_images_or_arrays(faces, classifier):
    images, _ = faces
    p = classifier.predict_proba(images[:5])
    assert p.shape == (5, 4) and p.dtype == numpy.float32 and p.min() >= 0 and p.max() <= 1
    arrays = numpy.stack([to_array(im) for im in images[:5]])
    numpy.testing.assert_allclose(classifier.predict_proba(arrays, batch_size=2), p, atol=1e-6)
    # the generator's unbounded output is read as the clipped image
    numpy.testing.assert_allclose(classifier.predict_proba(arrays * 3),
                                  classifier.predict_proba(numpy.clip(arrays * 3, -1, 1)))


def test_classifier_save_and_load(tmp_path, faces, classifier):
    images, _ = faces
    tagging.save_classifier(tmp_path / "clf.npz", classifier)
    loaded = tagging.load_classifier(tmp_path / "clf.npz")
    assert loaded.tags == TAGS and loaded.downscale == 3
    numpy.testing.assert_array_equal(loaded.predict_proba(images[:8]), classifier.predict_proba(images[:8]))
    with pytest.raises(tagging.TaggedDatasetError, match="missing.npz"):
        tagging.load_classifier(tmp_path / "missing.npz")


def test_vectors_from_labels_finds_a_planted_axis():
    z = zspace.sample_z(400, 100, 1)
    probs = numpy.stack([(z[:, 3] > 0) * 0.9, numpy.full(400, 0.95), (z[:, 7] > 0.9) * 1.0], axis=1)
    result = tagging.vectors_from_labels(z, probs, ["a", "everywhere", "rare"], min_count=25)
    assert [tv.name for tv in result] == ["a"]  # "everywhere" has no negatives, "rare" few positives
    v = result[0].v
    assert v.dtype == numpy.float32 and v.shape == (100,)
    assert numpy.abs(v).max() == 1.0 and v[3] == 1.0
    assert numpy.abs(numpy.delete(v, 3)).max() < 0.3
    assert result[0].count == int((z[:, 3] > 0).sum())
    with pytest.raises(ValueError, match="do not match"):
        tagging.vectors_from_labels(z, probs[:, :2], ["a", "b", "c"])


def test_tag_vectors_point_along_the_driving_axes(vectors):
    by_name = {tv.name: tv for tv in vectors}
    assert {"long_hair", "short_hair", "blonde_hair", "black_hair"} <= set(by_name)
    for name, axis, sign in [("long_hair", 0, 1), ("short_hair", 0, -1), ("blonde_hair", 1, 1), ("black_hair", 1, -1)]:
        v = by_name[name].v
        assert numpy.abs(v).max() == pytest.approx(1.0)
        assert numpy.argmax(numpy.abs(v)) == axis, (name, v[:4])
        assert sign * v[axis] == pytest.approx(1.0)
        assert numpy.abs(numpy.delete(v, axis)).max() < 0.5, name
        assert 20 <= by_name[name].count <= 280


def test_measured_effect_rises(stand_in, classifier, vectors):
    effects = tagging.measure_effect(stand_in, classifier, vectors, n=100, seed=1)
    assert [e.name for e in effects] == [tv.name for tv in vectors]
    for e in effects:
        assert sorted(e.shifted) == [0.5, 1.0]
        assert e.rises, e
        assert e.shifted[1.0] > e.base + 0.15, e
    # and by the ground truth: the share of long-haired faces grows from ~1/2 to all
    v = {tv.name: tv.v for tv in vectors}["long_hair"]
    z0 = zspace.sample_z(100, 100, 1)
    truth = [(zspace.compose(z0, 1.0, [s], v[None])[:, 0] >= 0).mean() for s in (0.0, 0.5, 1.0)]
    assert truth[0] < 0.65 and truth[1] > 0.7 and truth[2] > 0.95, truth
    table = tagging.format_effect_table(effects)
    assert "long_hair" in table and "+0.5*v" in table and "{0} of {0} tags rise".format(len(effects)) in table
    lines = tagging.format_effect_table(effects, {"long_hair": 0.9}).splitlines()
    assert lines[0].endswith("clf acc") and "off@1" in lines[0]
    assert [line[-7:].strip() for line in lines[2:-2]] == ["0.900" if e.name == "long_hair" else "-" for e in effects]
    assert lines[-1].startswith("mean off-target change at s = 1: ")


def test_off_target_change_tells_a_clean_slider_from_a_tangled_one(stand_in, classifier):
    """A vector along hair length alone barely moves the colour tags; one that also pushes the colour
    axis (z[1]) moves them, and the measurement says so."""
    pure = numpy.zeros(100, numpy.float32)
    pure[0] = 1
    tangled = pure.copy()
    tangled[1] = -1  # long hair, and black instead of blonde
    effects = tagging.measure_effect(stand_in, classifier, [tagging.TagVector("long_hair", pure, 1),
                                                            tagging.TagVector("long_hair", tangled, 1)],
                                     n=60, seed=4, strengths=(0.5, 1.0))
    clean, messy = effects
    assert clean.at == messy.at == 1.0
    assert set(clean.changes) == set(TAGS) - {"long_hair"}
    assert clean.changes["blonde_hair"] < 0.15 and clean.changes["black_hair"] < 0.15, clean.changes
    assert messy.changes["blonde_hair"] > 0.3 and messy.changes["black_hair"] > 0.3, messy.changes
    assert messy.off_target > clean.off_target + 0.15
    # short_hair falls as long_hair rises: an off-target change the slider cannot avoid
    assert clean.changes["short_hair"] > 0.3
    only = tagging.measure_effect(stand_in, classifier, [tagging.TagVector("long_hair", pure, 1)], n=8, seed=4,
                                  strengths=(0.25, 0.5))
    assert only[0].at == 0.5  # without s = 1 the changes are taken at the largest strength
    bar = tagging.TagEffect("t", 0.1, {1.0: 0.9}, {"u": 0.05}, 1.0)
    assert bar.clean() and not tagging.TagEffect("t", 0.1, {1.0: 0.9}, {"u": 0.2}, 1.0).clean()
    assert not tagging.TagEffect("t", 0.4, {1.0: 0.9}, {"u": 0.05}, 1.0).clean()
    assert tagging.clean_sliders([bar, tagging.TagEffect("v", 0.1, {1.0: 0.5}, {}, 1.0)]) == ["t"]


def test_fit_normals_recovers_logistic_weights():
    rs = numpy.random.RandomState(3)
    z = rs.uniform(-1, 1, (4000, 10))
    w_true = numpy.zeros((2, 10))
    w_true[0, 2] = 4.0
    w_true[1, [2, 5]] = [2.0, -3.0]
    probs = 1 / (1 + numpy.exp(-(z @ w_true.T + [0.5, -0.2])))
    normals = tagging.fit_normals(z, probs, l2=0)
    numpy.testing.assert_allclose(normals, w_true, atol=0.05)
    shrunk = tagging.fit_normals(z, probs, l2=0.1)
    assert numpy.linalg.norm(shrunk[0]) < numpy.linalg.norm(normals[0]) and 0 < shrunk[0, 2] < normals[0, 2]


def test_linear_and_orthogonal_methods():
    """Tag b's log-odds grow along z[3] + z[7], tag a's along z[3]: the linear normal of b has both
    components, the orthogonal one keeps only what a does not move (z[7])."""
    z = zspace.sample_z(3000, 100, 2).astype(numpy.float64)
    sig = lambda x: 1 / (1 + numpy.exp(-x))  # noqa: E731
    probs = numpy.stack([sig(5 * z[:, 3]), sig(4 * (z[:, 3] + z[:, 7]))], axis=1)
    linear = {tv.name: tv.v for tv in tagging.vectors_from_labels(z, probs, ["a", "b"], method="linear")}
    ortho = {tv.name: tv.v for tv in tagging.vectors_from_labels(z, probs, ["a", "b"], method="orthogonal")}
    mean = {tv.name: tv.v for tv in tagging.vectors_from_labels(z, probs, ["a", "b"], method="mean")}
    assert numpy.argmax(linear["a"]) == 3 and linear["a"][3] == 1.0
    assert linear["b"][3] == pytest.approx(1.0, abs=0.1) and linear["b"][7] == pytest.approx(1.0, abs=0.1)
    assert ortho["b"][7] == 1.0 and abs(ortho["b"][3]) < 0.1
    # a's slider must hold b's log-odds, so it pays z[3] back along z[7]
    assert abs(ortho["a"][3]) == pytest.approx(1.0, abs=0.1) and ortho["a"][3] == pytest.approx(-ortho["a"][7], abs=0.15)
    for name, other in (("a", "b"), ("b", "a")):
        cos = ortho[name] @ linear[other] / numpy.linalg.norm(ortho[name]) / numpy.linalg.norm(linear[other])
        assert abs(cos) < 1e-3, (name, cos)
    assert numpy.abs(numpy.delete(ortho["b"], [3, 7])).max() < 0.35
    assert mean["b"][3] > 0.5 and mean["b"][7] > 0.5  # the mean difference follows both, like linear
    with pytest.raises(ValueError, match="method"):
        tagging.vectors_from_labels(z, probs, ["a", "b"], method="pca")


def test_measure_effect_rejects_tags_the_classifier_does_not_know(stand_in, classifier):
    unknown = tagging.TagVector("glasses", numpy.ones(100, numpy.float32), 5)
    with pytest.raises(ValueError, match="glasses"):
        tagging.measure_effect(stand_in, classifier, [unknown], n=2)


def test_tag_vector_json_round_trip(tmp_path, stand_in, classifier, vectors):
    effects = tagging.measure_effect(stand_in, classifier, vectors[:1], n=4, seed=2)
    path = tmp_path / "tags.json"
    tagging.write_tag_vectors(path, vectors, effects, meta={"model": "stand-in"})
    assert [p.name for p in tmp_path.iterdir()] == ["tags.json"]
    doc = json.loads(path.read_text())
    assert doc["z_dim"] == 100 and doc["model"] == "stand-in"
    first = doc["tags"][0]
    assert set(first) == {"name", "v", "count", "effect"} and len(first["v"]) == 100
    assert set(first["effect"]["shifted"]) == {"0.5", "1"}
    assert "effect" not in doc["tags"][1]
    back = tagging.read_tag_vectors(path, z_dim=100)
    assert [tv.name for tv in back] == [tv.name for tv in vectors]
    for a, b in zip(back, vectors):
        assert a.count == b.count
        numpy.testing.assert_allclose(a.v, b.v, atol=1e-6)
    assert back[0].extra["effect"] == first["effect"]
    names, matrix = tagging.stack_vectors(back)
    assert names == [tv.name for tv in vectors] and matrix.shape == (len(vectors), 100)


@pytest.mark.parametrize("doc, match", [
    ([], "list 'tags'"),
    ({"tags": [{"v": [0.0] * 100}]}, r"tags\[0\]: field 'name'"),
    ({"tags": [{"name": "x", "v": "oops"}]}, r"tags\[0\] \(x\): field 'v'"),
    ({"tags": [{"name": "x", "v": [0.0] * 99}]}, "99 numbers, the model's z has 100"),
    ({"tags": [{"name": "x", "v": [0.0] * 100, "count": -1}]}, "count"),
    ({"tags": [{"name": "x", "v": [0.0] * 100}, {"name": "y", "v": [0.0] * 3}]}, r"tags\[1\] \(y\)"),
])
def test_read_tag_vectors_names_the_bad_field(tmp_path, doc, match):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(tagging.TagVectorFileError, match=match):
        tagging.read_tag_vectors(path, z_dim=100)


def test_read_tag_vectors_missing_or_not_json(tmp_path):
    with pytest.raises(tagging.TagVectorFileError, match="no such"):
        tagging.read_tag_vectors(tmp_path / "none.json")
    (tmp_path / "x.json").write_text("{")
    with pytest.raises(tagging.TagVectorFileError, match="not a JSON"):
        tagging.read_tag_vectors(tmp_path / "x.json")


def test_slider_faces_through_compose_match_measure_effect(stand_in, classifier, vectors):
    """The tools' formula: a slider at s on tag k is compose(z0, 1, s * e_k, V)."""
    names, matrix = tagging.stack_vectors(vectors)
    z0 = zspace.sample_z(6, 100, 4)
    k = names.index("long_hair")
    sliders = numpy.zeros(len(names))
    sliders[k] = 1.0
    numpy.testing.assert_allclose(zspace.compose(z0, 1.0, sliders, matrix),
                                  zspace.compose(z0, 1.0, [1.0], matrix[k:k + 1]))


def test_load_tagged_faces(tmp_path):
    write_dataset(tmp_path / "ds", 24, seed=2)
    images, labels, tags = tagging.load_tagged_faces(tmp_path / "ds", min_count=5)
    assert images.shape == (24, 96, 96, 3) and images.dtype == numpy.uint8
    assert labels.shape == (24, len(tags)) and labels.dtype == numpy.int32
    assert tags == sorted(tags) and {"short_hair", "long_hair"} & set(tags)
    assert (labels.sum(0) >= 5).all() and ((1 - labels).sum(0) >= 5).all()
    images2, labels2, tags2 = tagging.load_tagged_faces(tmp_path / "ds", tags=["glasses", "smile"], limit=10)
    assert tags2 == ["glasses", "smile"] and images2.shape[0] == 10
    numpy.testing.assert_array_equal(images2, images[:10])


def test_load_tagged_faces_errors(tmp_path):
    with pytest.raises(tagging.TaggedDatasetError, match="no manifest.jsonl"):
        tagging.load_tagged_faces(tmp_path)
    (tmp_path / "manifest.jsonl").write_text(json.dumps({"file": "a.png", "tags": ["x"]}) + "\n")
    with pytest.raises(tagging.TaggedDatasetError, match="no tag is on at least"):
        tagging.load_tagged_faces(tmp_path, min_count=1)
    (tmp_path / "a.png").write_bytes(b"not a png")
    with pytest.raises(tagging.TaggedDatasetError, match="a.png: cannot read image"):
        tagging.load_tagged_faces(tmp_path, tags=["x"])


def test_reach_shortens_a_vector_to_what_its_tag_needs():
    z = zspace.sample_z(2000, 100, 6).astype(numpy.float64)
    probs = (1 / (1 + numpy.exp(-(6 * z[:, 2] - 1))))[:, None]
    full = tagging.vectors_from_labels(z, probs, ["a"], method="linear")[0].v
    short = tagging.vectors_from_labels(z, probs, ["a"], method="linear", reach=0.8)[0].v
    never = tagging.vectors_from_labels(z, probs, ["a"], method="linear", reach=0.99999)[0].v
    assert numpy.abs(full).max() == 1.0 and numpy.array_equal(never, full)
    scale = numpy.abs(short).max()
    assert 0.05 < scale < 0.9
    numpy.testing.assert_allclose(short, full * scale, atol=1e-6)
    # the true model's mean probability at slider 1 is the reach asked for
    moved = numpy.clip(z + short, -1, 1)
    assert numpy.mean(1 / (1 + numpy.exp(-(6 * moved[:, 2] - 1)))) == pytest.approx(0.8, abs=0.02)
    mean = tagging.vectors_from_labels(z, probs, ["a"], method="mean", reach=0.8)[0].v
    assert numpy.abs(mean).max() < 0.9


def test_rivals_keep_their_trade_off_in_orthogonal_vectors():
    """Two exclusive 'hair colours' (z[0] > 0 or not) and an independent 'smile' (z[5]): the colour
    vectors keep pointing along z[0] (each colour is its rival's absence), while smile loses
    any share along z[0]."""
    z = zspace.sample_z(3000, 100, 8).astype(numpy.float64)
    sig = lambda x: 1 / (1 + numpy.exp(-x))  # noqa: E731
    probs = numpy.stack([sig(8 * z[:, 0]), sig(-8 * z[:, 0]), sig(6 * z[:, 5] + 3 * z[:, 0])], axis=1)
    labels = probs >= 0.5
    rival = tagging.rivals(labels)
    assert rival[0, 1] and rival[1, 0] and not rival[0, 2] and not rival[2, 1] and not rival.diagonal().any()
    v = {tv.name: tv.v for tv in tagging.vectors_from_labels(z, probs, ["blonde", "black", "smile"],
                                                             method="orthogonal")}
    assert v["blonde"][0] == 1.0 and v["black"][0] == -1.0  # not cancelled against each other
    assert v["smile"][5] == 1.0 and abs(v["smile"][0]) < 0.05  # its hair-colour share is gone


class SmoothHairStandIn(chainer.Link):
    """A differentiable stand-in: one face whose hair blends from short to long as ``sigmoid(6 z[0])``
    and from black to blonde as ``sigmoid(6 z[1])`` (built from Chainer functions, so gradients reach z)."""

    z_dim = 100

    def __init__(self, seed=5):
        super().__init__()
        faces = {}
        for length in ("short_hair", "long_hair"):
            for colour in ("black_hair", "blonde_hair"):
                image, tags = draw_face(face_random_state(seed, 0), require=(length, colour))
                faces[length, colour] = to_array(image)
        self.faces = faces

    def forward(self, z):
        F = chainer.functions
        z = z if isinstance(z, chainer.Variable) else chainer.Variable(numpy.asarray(z, numpy.float32))
        long_ = F.reshape(F.sigmoid(6 * z[:, 0]), (-1, 1, 1, 1))
        blonde = F.reshape(F.sigmoid(6 * z[:, 1]), (-1, 1, 1, 1))
        out = 0
        for (length, colour), face in self.faces.items():
            w = (long_ if length == "long_hair" else 1 - long_) * (blonde if colour == "blonde_hair" else 1 - blonde)
            out = out + F.broadcast_to(w, (len(z),) + face.shape) * face[None]
        return out


def test_refine_vectors_untangles_and_reaches():
    """Refinement through the generator and the classifier: a long-hair vector that also turns the
    hair black loses its colour share and keeps adding long hair; a vector too short to add its tag
    grows until it does; zero steps change nothing."""
    images, labels = draw_balanced(300, seed=21)
    clf = tagging.train_tag_classifier(images[:240], labels[:240], TAGS, epochs=6, batch_size=40, seed=0,
                                       width=16, downscale=3, alpha=3e-3)
    gen = SmoothHairStandIn()
    tangled = numpy.zeros(100, numpy.float32)
    tangled[0], tangled[1] = 1.0, -1.0
    weak = numpy.zeros(100, numpy.float32)
    weak[1] = 0.05
    start = [tagging.TagVector("long_hair", tangled, 7, {"x": 1}), tagging.TagVector("blonde_hair", weak, 9)]
    z = zspace.sample_z(64, 100, 3)
    clf.cleargrads()  # its training left gradients
    refined = tagging.refine_vectors(gen, clf, start, z, steps=120, lr=0.05, batch_size=16, seed=0)
    # only the vectors get gradients: none computed (nor left behind) for the classifier's weights
    assert all(p.grad is None for p in clf.params())
    assert [(tv.name, tv.count, tv.extra) for tv in refined] == [("long_hair", 7, {"x": 1}), ("blonde_hair", 9, {})]
    before = tagging.measure_effect(gen, clf, start, n=60, seed=4)
    after = tagging.measure_effect(gen, clf, refined, n=60, seed=4)
    assert before[0].changes["black_hair"] > 0.3 and before[0].off_target > 0.2, before[0]
    # by the ground truth: the colour axis z[1] lost most of its share, the length axis z[0] kept it
    assert abs(refined[0].v[1]) < 0.4 and refined[0].v[0] > 0.5, refined[0].v[:3]
    assert after[0].off_target < 0.7 * before[0].off_target, (before[0], after[0])
    assert after[0].shifted[1.0] > 0.8  # and the faces still get long hair
    assert before[1].shifted[1.0] < before[1].base + 0.1 < 0.8 < after[1].shifted[1.0], (before[1], after[1])
    unchanged = tagging.refine_vectors(gen, clf, start, z, steps=0)
    assert all(numpy.array_equal(a.v, b.v) for a, b in zip(unchanged, start))
    with pytest.raises(ValueError, match="does not know: hat"):
        tagging.refine_vectors(gen, clf, [tagging.TagVector("hat", weak, 1)], z)
    with pytest.raises(ValueError, match="target"):
        tagging.refine_vectors(gen, clf, start, z, target=1.0)


def test_a_slider_that_draws_another_tag_is_dropped():
    vectors = [tagging.TagVector(n, numpy.zeros(100, numpy.float32), 1) for n in ("ears", "hat", "solo")]
    effects = [tagging.TagEffect("ears", 0.1, {1.0: 0.9}, {"blonde": 0.88, "hat": 0.02}, 1.0),
               tagging.TagEffect("hat", 0.1, {1.0: 0.9}, {"blonde": 0.05, "ears": 0.6}, 1.0),
               tagging.TagEffect("solo", 0.1, {1.0: 0.9}, {}, 1.0)]
    assert effects[0].side_effect == ("blonde", 0.88) and effects[2].side_effect == (None, 0.0)
    kept, kept_effects, dropped = tagging.drop_side_effects(vectors, effects, 0.6)
    assert [tv.name for tv in kept] == [e.name for e in kept_effects] == ["hat", "solo"]  # 0.6 itself is kept
    assert dropped == [("ears", ("blonde", 0.88))]
    with pytest.raises(ValueError, match="do not match"):
        tagging.drop_side_effects(vectors[:2], effects, 0.6)


def test_calibrate_scales_each_vector_to_its_reach(stand_in, classifier):
    """Hair is blonde where z[1] >= 0, so the mean probability of blonde hair grows with the scale of a
    z[1] vector: one too long is shortened and one too short lengthened until the classifier's mean
    on the given z is the reach; a tag already there keeps its vector, one out of reach gets the
    longest scale."""
    z = zspace.sample_z(200, 100, 7)
    k = TAGS.index("blonde_hair")

    def axis(length):
        v = numpy.zeros(100, numpy.float32)
        v[1] = length
        return tagging.TagVector("blonde_hair", v, 3, {"x": 1})

    def mean_prob(tv):
        return tagging.label_faces(stand_in, classifier, zspace.compose(z, 1.0, [1.0], tv.v[None]))[:, k].mean()

    base = tagging.label_faces(stand_in, classifier, z)[:, k].mean()
    assert 0.3 < base < 0.7
    start = [axis(1.0), axis(0.3), axis(0.02)]
    assert mean_prob(start[0]) > 0.9 and mean_prob(start[1]) < 0.75
    out, scales = tagging.calibrate_vectors(stand_in, classifier, start, z, 0.75, tolerance=0.01, evaluations=8)
    assert [(tv.name, tv.count, tv.extra) for tv in out] == [("blonde_hair", 3, {"x": 1})] * 3
    assert scales[0] < 1 < scales[1] and scales[2] == 2.0, scales
    for tv, c, old in zip(out[:2], scales, start):
        numpy.testing.assert_allclose(tv.v, old.v * c, rtol=1e-6)
        assert abs(mean_prob(tv) - 0.75) < 0.03, (c, mean_prob(tv))
    assert mean_prob(out[2]) < 0.7  # out of reach even at twice its length
    kept, scale = tagging.calibrate_vectors(stand_in, classifier, start[:1], z, base - 0.05)
    assert scale == [1.0] and numpy.array_equal(kept[0].v, start[0].v)
    with pytest.raises(ValueError, match="does not know: hat"):
        tagging.calibrate_vectors(stand_in, classifier, [tagging.TagVector("hat", start[0].v, 1)], z, 0.8)
    with pytest.raises(ValueError, match="reach"):
        tagging.calibrate_vectors(stand_in, classifier, start, z, 1.0)
