"""One training loop for every family: run folders, resume, metrics.jsonl, the progress line, periodic
checkpoints, Ctrl-C and SIGTERM, and outputs that are whole or absent.

A family's run (embeddings.WordJob, s2net_run.S2NetJob) is a `Job`: how to start, advance, evaluate and
finish. `train` does the rest, the same way for all of them.
"""

import contextlib
import dataclasses
import json
import math
import os
import re
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Protocol

import jax

from ace_jax import io
from ace_jax.errors import AceJaxError, Diverged, Interrupted, SettingError

SIGNAL_NAMES = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}
TEMPORARY = re.compile(r"^\..+\.[0-9a-f]{8}\.tmp$")  # io.atomic_write's temporary files


class Job(Protocol):
    """What a family's run gives the loop. Steps are counted on the host, from 0."""

    family: str  # saved in config.json, so a run is never resumed as another family's
    config: Any  # a frozen dataclass with to_json()
    extendable: tuple[str, ...]  # config fields a resumed run may change (S2Net's steps: train longer)
    total_steps: int  # sys.maxsize where another budget decides (`spent`)
    log_every: int  # steps between train records (and progress updates)
    eval_every: int  # steps between evaluation records; 0: at the end only
    checkpoint_every: int  # steps between checkpoints; 0: at the end, and when stopped, only
    final_file: str  # written last by `finish`: its presence marks a finished run
    words_per_step: float | None  # corpus words a step covers, for the progress line's words/s

    def start(self, out: Path) -> None: ...  # writes what a new run folder holds besides config.json
    def initial_state(self) -> Any: ...  # on the host: the template checkpoints are read into
    def place(self, state) -> Any: ...  # host state -> device state
    def fetch(self, state) -> Any: ...  # device state -> host state (every process takes part)
    def advance(self, state, step: int, steps: int) -> tuple[Any, dict]: ...  # `steps` steps from `step`
    def spent(self, state) -> bool: ...  # whether a budget other than steps is used up
    def status(self, state) -> dict: ...  # host numbers for the train record (total pairs, ...)
    def progress(self, status: dict, scores: dict) -> list[str]: ...  # the family's parts of the progress line
    def evaluate(self, state) -> dict: ...  # scores recorded along training ({} on processes other than 0)
    def finish(self, state, out: Path, writer: bool) -> dict: ...  # the final outputs; returns the final scores


def power_of_two_pieces(steps: int) -> list[int]:
    """`steps` as distinct powers of two, largest first (25 -> [16, 8, 1])."""
    return [1 << b for b in reversed(range(steps.bit_length())) if steps >> b & 1]


def advance_in_pieces(advance_scan, state, step: int, steps: int, regular: tuple[int, ...], cuts=None):
    """For a job that scans its steps: advance_scan(state, step, n) -> (state, metrics averaged over its n steps),
    run as one scan when `steps` is one of the job's `regular` advances (its log and evaluation intervals), else
    over power-of-two pieces; returns the state and the metrics averaged over all `steps`. cuts {step: fn(state)
    -> state}: the advance is split where a cut falls among its steps, fn applied before that step (a learning
    rate's drop), each part run as above.

    The loop advances to the next log, evaluation or checkpoint step, so where those intervals do not divide each
    other the distances shift with every evaluation (1,471 steps an epoch against a log every 100: 71, 29, 42,
    58, ...). Each scan length is its own compiled program, kept for the process's life: one per distance
    compiled new ones at every evaluation, and a process training several runs ran out of memory maps (XLA's
    "Cannot allocate memory", then a crash). This way a job compiles at most len(regular) + log2 lengths."""
    cuts = {at: fn for at, fn in (cuts or {}).items() if step <= at < step + steps}
    bounds = sorted({step, step + steps, *cuts})
    pieces = []  # (the cut applied before it or None, its steps)
    for start, end in zip(bounds, bounds[1:]):
        lengths = [end - start] if end - start in regular else power_of_two_pieces(end - start)
        pieces += [(cuts.get(start) if i == 0 else None, n) for i, n in enumerate(lengths)]
    metrics, done = None, 0
    for cut, n in pieces:
        if cut is not None:
            state = cut(state)
        state, piece = advance_scan(state, step + done, n)
        metrics = piece if metrics is None else jax.tree.map(
            lambda a, b, w=n / (done + n): a + (b - a) * w, metrics, piece)
        done += n
    return state, metrics


def load_config(folder: str | Path, family: str, from_json, field: str = "out") -> Any:
    """The saved config of the run in `folder`, or one clear error naming `field` (the setting that gave the
    folder): no run there, config.json missing or damaged, or a run of another family."""
    folder = Path(folder)
    path = folder / "config.json"
    if not folder.is_dir():
        raise SettingError(field, str(folder), "{name} {value} is not a run folder")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
    except FileNotFoundError:
        raise SettingError(field, str(folder), "{name} {value} is not a run folder: it has no config.json") from None
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise SettingError(field, str(folder), f"{{name}} {{value}}: {path.name} is damaged ({error})") from None
    saved = data.pop("family", None) or ("word" if "corpus" in data else "s2net" if "data" in data else "unknown")
    if saved != family:
        raise SettingError(field, str(folder), f"{{name}} {{value}} holds a {saved} run, not a {family} one")
    try:
        return from_json(data)
    except (TypeError, KeyError, ValueError) as error:
        raise SettingError(field, str(folder), f"{{name}} {{value}}: {path.name} is damaged ({error})") from None


def check_same_run(folder: str | Path, family: str, from_json, config) -> None:
    """For scripts that train and table many run folders: refuse a folder that holds a run of other settings,
    which would otherwise be tabled as this one."""
    folder = Path(folder)
    if (folder / "config.json").exists() and load_config(folder, family, from_json) != config:
        raise AceJaxError(f"{folder} holds a run with other settings; pass --runs with another folder")


def leaf_fields(config) -> dict:
    """A config's fields, nested configs flattened: {field name: value}."""
    fields = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        fields.update(leaf_fields(value) if dataclasses.is_dataclass(value) else {f.name: value})
    return fields


def check_same_settings(saved, given, extendable: tuple[str, ...], out: Path) -> None:
    """A resumed run trains with the settings it started with: any other value is an error naming it."""
    saved_fields, given_fields = leaf_fields(saved), leaf_fields(given)
    for name, value in given_fields.items():
        if name not in extendable and value != saved_fields[name]:
            raise SettingError(name, value, f"{{name}} {{value!r}} differs from the run in {out}, whose {name} is "
                                            f"{saved_fields[name]!r}; resume with its settings, or choose another "
                                            "--out")


def check_folder(out: str | Path, family: str, from_json, config, resume: bool, extendable: tuple[str, ...] = ()):
    """The checks of `train` that need no job, for a family to make before its job reads any data: a new run's
    folder is absent or empty; a resumed run is there, of this family, with a checkpoint and the same settings."""
    out = Path(out)
    if resume:
        check_same_settings(load_config(out, family, from_json), config, extendable, out)
        if not (out / "checkpoint.msgpack").exists():
            raise SettingError("out", str(out), "nothing to resume: {name} {value} has no checkpoint")
    elif jax.process_index() == 0:
        try:
            taken = out.exists() and (not out.is_dir() or any(out.iterdir()))
        except OSError as error:
            raise SettingError("out", str(out), f"cannot read {{name}} {{value}}: {error.strerror}") from None
        if taken:
            open_folder(out)  # raises the error that applies


def open_folder(out: Path) -> bool:
    """Makes the run folder of a new run; returns whether this call created it. An existing file, a folder
    that is not empty, or a parent that cannot be created is one clear error."""
    try:
        if out.exists() and not out.is_dir():
            raise SettingError("out", str(out), "{name} {value} is a file, not a folder")
        if out.is_dir() and any(out.iterdir()):
            raise SettingError("out", str(out), "{name} {value} already exists and is not empty; pass --resume to "
                                                "continue it or choose another folder")
        created = not out.exists()
        out.mkdir(parents=True, exist_ok=True)
        if not os.access(out, os.W_OK | os.X_OK):
            raise SettingError("out", str(out), "cannot write in {name} {value}: permission denied")
    except OSError as error:
        raise SettingError("out", str(out), f"cannot create {{name}} {{value}}: {error.strerror}") from None
    return created


def write_config(out: Path, job: Job) -> None:
    with io.atomic_write(out / "config.json") as f:
        json.dump({"family": job.family, **job.config.to_json()}, f, indent=2)


def remove_temporaries(out: Path) -> None:
    """Temporary files a killed run left behind (io.atomic_write renames them into place when it finishes)."""
    for path in out.iterdir():
        if TEMPORARY.match(path.name):
            path.unlink(missing_ok=True)


def read_records(path: Path) -> list[dict]:
    """The records of a metrics.jsonl; a line a killed run left half-written is skipped."""
    records = []
    for line in path.read_text(encoding="utf-8").splitlines() if path.exists() else []:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "step" in record:
            records.append(record)
    return records


def truncate_metrics(path: Path, last_step: int) -> int | None:
    """On resume, forget records written after the checkpoint, which the resumed run will write again; returns
    the checkpoint's step if an evaluation record of it is kept (the run must not evaluate it twice)."""
    kept = [r for r in read_records(path) if r["step"] <= last_step]
    if path.exists():
        with io.atomic_write(path) as f:
            f.write("".join(json.dumps(r) + "\n" for r in kept))
    return last_step if any(r["step"] == last_step and r.get("kind") == "eval" for r in kept) else None


def finite_or_null(record: dict) -> dict:
    """JSON has no NaN: non-finite numbers become null (nested dicts too)."""
    def clean(value):
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        return None if isinstance(value, float) and not math.isfinite(value) else value

    return clean(record)


def append_jsonl(path: Path, record: dict) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(finite_or_null(record), allow_nan=False) + "\n")


@contextlib.contextmanager
def stop_requests():
    """Ctrl-C (SIGINT) and SIGTERM set an event the loop reads between steps, so the state it saves is never
    half-donated; the event's `signum` says which arrived."""
    event = threading.Event()
    event.signum = None
    if threading.current_thread() is not threading.main_thread():
        yield event
        return

    def request(signum, frame):
        event.signum = signum
        event.set()

    previous = {signum: signal.signal(signum, request) for signum in SIGNAL_NAMES}
    try:
        yield event
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def format_duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


class ProgressLine:
    """gensim/fastText-style progress on stderr: one updating line on a terminal, plain lines in a log file."""

    def __init__(self, job: Job, stream=None):
        self.job, self.stream = job, stream or sys.stderr
        self.terminal = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start_step = self.start_time = None
        self.open = False

    def update(self, step: int, metrics: dict, status: dict, scores: dict) -> None:
        if self.start_step is None:  # the first update only starts the clock (it includes compilation)
            self.start_step, self.start_time = step, time.perf_counter()
        rate = (step - self.start_step) / max(time.perf_counter() - self.start_time, 1e-9)
        total = "" if self.job.total_steps == sys.maxsize else f"/{self.job.total_steps}"
        parts = [f"step {step}{total}"]
        if rate > 0:
            words = self.job.words_per_step
            parts.append(f"{rate * words / 1e3:.1f}k words/s" if words else f"{rate:.1f} steps/s")
        parts += [f"loss {metrics['loss']:.4f}", *self.job.progress(status, scores)]
        if "gen_entropy" in metrics:
            parts.append(f"gen H {metrics['gen_entropy']:.2f}")
        if rate > 0 and self.job.total_steps < sys.maxsize:
            parts.append(f"ETA {format_duration((self.job.total_steps - step) / rate)}")
        line = " | ".join(parts)
        print("\r" + line if self.terminal else line, end="" if self.terminal else "\n", file=self.stream, flush=True)
        self.open = self.terminal

    def close(self) -> None:
        if self.open:
            print(file=self.stream, flush=True)
            self.open = False


def next_boundary(step: int, job: Job, stop_at_step: int | None) -> int:
    """How many steps to advance before the loop must act: log, evaluate, checkpoint, stop or end."""
    ends = [job.total_steps, step + job.log_every - step % job.log_every]
    ends += [step + every - step % every for every in (job.eval_every, job.checkpoint_every) if every]
    if stop_at_step is not None:
        ends.append(max(stop_at_step, step + 1))
    return min(ends) - step


def train(job_type, config, out: str | Path, *, resume: bool = False, progress: bool = True,
          stop_at_step: int | None = None, **job_options) -> dict:
    """Trains job_type(config, **job_options) into the run folder `out`; returns the final scores (those of
    the job's final_file).

    A new run needs `out` absent or empty: the folder is made before the job reads any data, and
    config.json is written first. resume=True continues from the checkpoint with the saved settings
    (`config` must equal them but for job_type.extendable), and gives the same result as an unbroken run;
    on a finished run it returns the saved scores and writes nothing. stop_at_step (or Ctrl-C, or SIGTERM)
    saves a checkpoint and stops: {} for stop_at_step, Interrupted (exit status 128 + the signal) otherwise.
    A run that fails before its first checkpoint leaves no folder it created. In a multi-host run every
    process trains and only process 0 writes.
    """
    out = Path(out)
    writer = jax.process_index() == 0
    checkpoint_path, metrics_path = out / "checkpoint.msgpack", out / "metrics.jsonl"
    check_folder(out, job_type.family, type(config).from_json, config, resume, job_type.extendable)
    created = open_folder(out) if writer and not resume else False
    line, evaluated = None, None
    try:
        job = job_type(config, **job_options)  # reads and checks the data
        if resume:
            state = io.load_checkpoint(checkpoint_path, job.initial_state())
            if (out / job.final_file).exists() and (int(state.step) >= job.total_steps or job.spent(state)):
                if writer:
                    remove_temporaries(out)
                return json.loads((out / job.final_file).read_text(encoding="utf-8"))  # finished: nothing to add
            if writer:
                remove_temporaries(out)
                write_config(out, job)  # an extended run (job_type.extendable) records its new settings
                evaluated = truncate_metrics(metrics_path, int(state.step))
        else:
            state = job.initial_state()
            if writer:
                write_config(out, job)
                job.start(out)
        state = job.place(state)

        def checkpoint():
            host_state = job.fetch(state)  # every process takes part when shards live on other hosts
            if writer:
                io.save_checkpoint(checkpoint_path, host_state)

        def record(entry):
            if writer:
                append_jsonl(metrics_path, entry)

        line = ProgressLine(job) if progress and writer else None
        step, scores = int(state.step), {}
        spent = job.spent(state)  # a budget other than steps, read from the device at log steps only
        with stop_requests() as stop:
            while step < job.total_steps and not spent:
                if stop_at_step is not None and step >= stop_at_step:
                    checkpoint()
                    return {}
                advance = next_boundary(step, job, stop_at_step)
                state, metrics = job.advance(state, step, advance)
                step += advance
                if step % job.log_every == 0 or step == job.total_steps:
                    host = {k: float(v) for k, v in jax.device_get(metrics).items()}
                    bad = [name for name in sorted(host, key=lambda n: n != "loss") if not math.isfinite(host[name])]
                    if bad:  # the loss, or any other metric (a generator's entropy turns NaN before the loss)
                        kept = ("the run folder keeps the last checkpoint" if checkpoint_path.exists() else
                                "no checkpoint was written yet")
                        raise Diverged(f"the {bad[0]} became {host[bad[0]]} at step {step}; lower the learning "
                                       f"rate ({kept})", step)
                    status = job.status(state)
                    spent = job.spent(state)
                    record({"step": step, "kind": "train", **status, **host})
                    if line:
                        line.update(step, host, status, scores)
                if job.eval_every and step % job.eval_every == 0:
                    scores, evaluated = job.evaluate(state), step
                    if scores:
                        record({"step": step, "kind": "eval", **scores})
                    spent = job.spent(state)  # a stop an evaluation decides (early stopping) is seen at once
                if job.checkpoint_every and step % job.checkpoint_every == 0:
                    checkpoint()
                if stop.is_set():  # between steps, and after the last one too
                    checkpoint()
                    name = SIGNAL_NAMES.get(stop.signum, f"signal {stop.signum}")
                    raise Interrupted(f"stopped by {name} at step {step}; the checkpoint is saved, continue with "
                                      "--resume", stop.signum)
    except BaseException:
        if created and not checkpoint_path.exists():
            shutil.rmtree(out, ignore_errors=True)
        raise
    finally:
        if line:
            line.close()
    checkpoint()
    if evaluated != step:
        scores = job.evaluate(state)
        if scores:
            record({"step": step, "kind": "eval", **scores})
    return job.finish(state, out, writer)
