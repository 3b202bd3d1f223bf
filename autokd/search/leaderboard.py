"""Reading a finished (or running) study: ranked strategies, failures, parameter importances."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Optional

from autokd.search.ledger import FAIL_REASON_ATTR, FOOTPRINT_ATTR, STEPS_ATTR, STRATEGY_ATTR, is_void
from autokd.search.objectives import Judging, judging_of, pareto_front


@dataclass
class Entry:
    rank: int
    number: int
    value: float
    strategy: dict
    seconds: Optional[float]
    steps: Optional[int] = None  # training steps, every model and stage of its scheme (None: not recorded)
    values: list[float] = field(default_factory=list)  # every objective's value (the first is ``value``)
    footprint: Optional[dict] = None  # the shipped student's size and speed (None: not recorded)
    confirmed: Optional[dict] = None  # --confirm: {"values", "mean", "se"} over more seeds (None: not confirmed)

    @property
    def score(self) -> float:
        """What the entry ranks by: the confirmed mean when confirmed, else the proxy value."""
        return self.confirmed["mean"] if self.confirmed else self.value


def judging(study) -> Judging:
    """The study's objectives and constraints (one objective and none for a study without settings).
    It reads and parses the stored space: a caller that ranks several times reads it once and
    passes it to :func:`ranked` and :func:`front`."""
    from autokd.errors import AutokdError
    from autokd.search.settings import DamagedSettings
    from autokd.search.study import read_settings

    try:
        settings = read_settings(study)
    except DamagedSettings:  # judged by other constraints than its own, it would be misranked
        raise
    except AutokdError:  # a study not made by autokd search
        return Judging()
    return judging_of(settings.space_text)


def complete_entries(study) -> list[Entry]:
    """Every complete trial that holds a strategy, feasible or not, in trial order (rank 0)."""
    from optuna.trial import TrialState

    from autokd.search.confirm import confirmed

    trials = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if STRATEGY_ATTR in t.user_attrs]
    sure = confirmed(study)["trials"]
    return [Entry(0, t.number, t.values[0], t.user_attrs[STRATEGY_ATTR],
                  (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_start and t.datetime_complete
                  else None, t.user_attrs.get(STEPS_ATTR), list(t.values), t.user_attrs.get(FOOTPRINT_ATTR),
                  sure.get(t.number))
            for t in trials]


def ranked(study, rules: Optional[Judging] = None) -> list[Entry]:
    """Complete trials whose student meets the study's constraints, best validation accuracy
    first; confirmed trials (``--confirm``) whose proxy value no unconfirmed trial beats come first,
    by their confirmed mean: an unconfirmed value just below them is as inflated by noise as theirs
    were. A confirmed trial an unconfirmed one outscored (a raised budget found better ones) ranks
    among the rest by its mean (ties: the earlier trial). ``rules``: the study's :func:`judging`,
    when the caller has it."""
    rules = rules or judging(study)
    entries = [e for e in complete_entries(study) if rules.feasible(e.footprint)]
    best_unconfirmed = max((e.value for e in entries if e.confirmed is None), default=float("-inf"))
    entries.sort(key=lambda e: (not (e.confirmed and e.value >= best_unconfirmed), -e.score, e.number))
    return [replace(e, rank=i + 1) for i, e in enumerate(entries)]


def front(study, rules: Optional[Judging] = None) -> list[Entry]:
    """The Pareto front of the feasible trials over the study's objectives, most accurate first
    (with one objective: the most accurate trial)."""
    rules = rules or judging(study)
    entries = ranked(study, rules)
    on_front = set(pareto_front([(e.number, e.values) for e in entries], rules.objectives))
    return [e for e in entries if e.number in on_front]


def failures(study) -> list[tuple[int, str]]:
    """Failed trials (not the void ones: interrupted, duplicates) with their reasons."""
    from optuna.trial import TrialState

    return [
        (t.number, t.user_attrs.get(FAIL_REASON_ATTR, "unknown"))
        for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
        if not is_void(t)
    ]


MIN_TRIALS_FOR_IMPORTANCES = 5  # fewer complete trials: every parameter equally "important", or noise


def importances(study) -> dict[str, float]:
    """Optuna's parameter importances (its default evaluator); empty with fewer than
    :data:`MIN_TRIALS_FOR_IMPORTANCES` complete trials."""
    import warnings

    import optuna
    from optuna.trial import TrialState

    if len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))) < MIN_TRIALS_FOR_IMPORTANCES:
        return {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "few trials in some regimes": expected early in a search
        try:
            target = (lambda t: t.values[0]) if len(study.directions) > 1 else None  # accuracy's importances
            return optuna.importance.get_param_importances(study, target=target)
        except (RuntimeError, ValueError):
            return {}


def describe_strategy(data: dict) -> str:
    from autokd.config.strategy import strategy_from_dict

    return strategy_from_dict(data).describe()


def format_leaderboard(entries: list[Entry], top: int = 10, empty: str = "no complete trials yet") -> str:
    """A table of ``entries`` (the student's size and speed too where trials recorded them)."""
    if not entries:
        return empty
    sized = any(e.footprint for e in entries[:top])
    sure = any(e.confirmed for e in entries[:top])
    rates = {_lr(e) for e in entries[:top]}  # a searched learning rate is shown where it differs
    size_head = f"  {'params':>9}  {'KiB':>7}  {'ms':>6}" if sized else ""
    sure_head = f"  {'confirmed':>15}" if sure else ""
    lines = [f"{'rank':>4}  {'trial':>5}  {'val acc':>7}{sure_head}{size_head}  {'steps':>7}  {'time':>6}  strategy"]
    for e in entries[:top]:
        lr = f", lr={_lr(e):.3g}" if len(rates) > 1 and _lr(e) else ""
        steps = f"{e.steps:>7,}" if e.steps is not None else f"{'-':>7}"
        seconds = f"{e.seconds:>5.0f}s" if e.seconds is not None else f"{'-':>6}"
        size = f"  {_size_text(e.footprint)}" if sized else ""
        rank = f"{e.rank:>4}" if e.rank else f"{'-':>4}"
        confirmed = (f"  {e.confirmed['mean']:>6.2f}±{e.confirmed['se']:.2f} ({len(e.confirmed['values'])}"
                     f"{', %d diverged' % e.confirmed['diverged'] if e.confirmed.get('diverged') else ''})"
                     if e.confirmed else f"  {'-':>15}") if sure else ""
        lines.append(f"{rank}  {e.number:>5}  {e.value:>6.2f}%{confirmed}{size}  {steps}  {seconds}  "
                     f"{describe_strategy(e.strategy)}{lr}")
    return "\n".join(lines)


def _lr(entry: Entry) -> Optional[float]:
    """The entry's learning rate; None when it has none that is a number (a damaged strategy is
    reported by :func:`describe_strategy`)."""
    recipe = entry.strategy.get("recipe")
    lr = recipe.get("lr") if isinstance(recipe, dict) else None
    return float(lr) if isinstance(lr, (int, float)) and not isinstance(lr, bool) else None


def empty_text(rules: Judging, complete: int) -> str:
    """What an empty leaderboard of a study with ``complete`` complete trials says: nothing
    complete yet, or every complete trial infeasible."""
    if complete and rules.constraints:
        return f"no feasible trial: all {complete} complete trial(s) break the constraints ({rules.limits})"
    return "no complete trials yet"


def noise_line(study) -> str:
    """What the confirmation runs say about the proxy's seed noise ("" when none ran)."""
    from autokd.search.confirm import confirmed

    state = confirmed(study)
    if state["noise"] is None:
        return ""
    return (f"proxy seed noise (pooled sd over {len(state['trials'])} confirmed trial(s)): {state['noise']:.2f} points; "
            f"proxy values closer than about {2 * state['noise']:.2f} points are within noise")


def _size_text(footprint: Optional[dict]) -> str:
    if not footprint:
        return f"{'-':>9}  {'-':>7}  {'-':>6}"
    latency = footprint.get("latency_ms")  # None: not measurable (a model that runs no batch of 1 or 2)
    return (f"{footprint['params']:>9,}  {footprint['size_bytes'] / 1024:>7.1f}  "
            + (f"{latency:>6.3f}" if latency is not None else f"{'-':>6}"))
