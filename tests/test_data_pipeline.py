"""End to end, through the command lines: local safebooru -> scrape -> crop faces -> train a few iterations."""
import os

import numpy
import pytest

from chainer_dcgan.collection.safebooru import read_posts
from chainer_dcgan.datasets.manifest import read_manifest
from chainer_dcgan.testing.safebooru_server import Fault, ServedPost
from conftest import REPO, run_script

TRAIN_SCRIPT = os.path.join(REPO, "examples", "train_faces.py")

# The real illustrations, tagged as a booru would; the background is a scenery post without a face.
SAMPLE_TAGS = {
    "renpy_sylvie_blue_normal.png": "1girl solo blue_hair",
    "renpy_sylvie_green_smile.png": "1girl solo smile",
    "renpy_eileen_happy.png": "1girl solo smile",
    "renpy_lucy_happy.png": "1girl solo red_hair",
    "renpy_thequestion_launchimage.png": "1girl solo",
    "renpy_bg_lecturehall_noface.jpg": "scenery no_humans",
    "tadne_tile_r0c3_512.jpg": "1girl solo",
    "tadne_grid6x6_1152.jpg": "1girl multiple_girls comic",
}


@pytest.mark.skipif(not os.path.exists(TRAIN_SCRIPT), reason="examples/train_faces.py is not in this checkout yet")
def test_scrape_crop_train(shared_data, safebooru_site, tmp_path):
    samples = os.path.join(shared_data, "anime_samples")
    posts = [ServedPost(id=100 + i, tags=SAMPLE_TAGS[name].split(), path=os.path.join(samples, name))
             for i, name in enumerate(sorted(SAMPLE_TAGS))]
    server = safebooru_site(posts, faults=[Fault("reset", target="image", times=1, skip=2),
                                           Fault("rate_limit", times=1, retry_after=0)])
    scraped, dataset, result = tmp_path / "scraped", tmp_path / "faces", tmp_path / "result"

    proc = run_script("tools/scrape_safebooru.py", "--base-url", server.url, "--delay", 0, "--backoff", 0.01,
                      "--tags", "1girl -comic", "--out", scraped, "--max-posts", 20, "--no-progress", timeout=300)
    assert "stored 6 new" in proc.stdout
    assert sorted(r["id"] for r in read_posts(str(scraped))) == [
        p.id for p in posts if "1girl" in p.tags and "comic" not in p.tags]

    proc = run_script("tools/crop_faces.py", "--input", scraped, "--out", dataset, "--cascade",
                      os.path.join(shared_data, "lbpcascade_animeface.xml"), "--workers", 1, "--no-progress",
                      timeout=300)
    assert "images read 6, faces written 6" in proc.stdout
    records = read_manifest(str(dataset))
    assert len(records) == 6 and all("1girl" in r["tags"] and r["post_id"] >= 100 for r in records)

    run_script(TRAIN_SCRIPT, "--dataset", dataset, "--iteration", 2, "--batchsize", 4, "--out", result,
               "--gpu", -1, "--no-progress", timeout=600)
    outputs = os.listdir(str(result))
    assert any(name.startswith("gen_iter_") for name in outputs), outputs


# Tags with characters outside ASCII, as safebooru has them (Japanese names, accents, symbols).
UNICODE_TAGS = {
    "renpy_sylvie_blue_normal.png": "1girl 猫耳 blue_hair",
    "renpy_sylvie_green_smile.png": "1girl café smile",
    "renpy_eileen_happy.png": "1girl 猫耳 ö_(ü)",
    "renpy_lucy_happy.png": "1girl café",
    "renpy_thequestion_launchimage.png": "1girl ö_(ü) ★",
    "tadne_tile_r0c3_512.jpg": "1girl 猫耳 ★",
}


@pytest.mark.parametrize("as_json", [False, True], ids=["xml", "json"])
def test_non_ascii_tags_round_trip(shared_data, safebooru_site, tmp_path, as_json):
    from chainer_dcgan.zspace import tagging
    samples = os.path.join(shared_data, "anime_samples")
    posts = [ServedPost(id=200 + i, tags=UNICODE_TAGS[name].split(), path=os.path.join(samples, name))
             for i, name in enumerate(sorted(UNICODE_TAGS))]
    server = safebooru_site(posts)
    scraped, dataset = tmp_path / "scraped", tmp_path / "faces"
    run_script("tools/scrape_safebooru.py", "--base-url", server.url, "--delay", 0, "--tags", "1girl", "--out",
               scraped, "--max-posts", 10, "--no-progress", *(["--json"] if as_json else []), timeout=120)
    want = {p.id: p.tags for p in posts}
    assert {r["id"]: r["tags"] for r in read_posts(str(scraped))} == want  # posts.jsonl

    run_script("tools/crop_faces.py", "--input", scraped, "--out", dataset, "--cascade",
               os.path.join(shared_data, "lbpcascade_animeface.xml"), "--workers", 2, "--no-progress", timeout=120)
    records = read_manifest(str(dataset))
    assert {r["post_id"]: r["tags"] for r in records} == want  # the crop manifest: one face per post here

    _, labels, vocabulary = tagging.load_tagged_faces(str(dataset), min_count=1)
    assert vocabulary == sorted({"猫耳", "café", "ö_(ü)", "★", "blue_hair", "smile"})  # 1girl is on every face
    column = vocabulary.index("猫耳")
    assert sorted(r["post_id"] for r, y in zip(records, labels[:, column]) if y) == [
        p.id for p in posts if "猫耳" in p.tags]
    path = str(tmp_path / "tag_vectors.json")
    tagging.write_tag_vectors(path, [tagging.TagVector(name, numpy.eye(len(vocabulary))[k], 1)
                                     for k, name in enumerate(vocabulary)])
    assert [tv.name for tv in tagging.read_tag_vectors(path, z_dim=len(vocabulary))] == vocabulary
