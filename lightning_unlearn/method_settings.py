"""What each experiment method accepts as settings, checked before anything trains.

:func:`~lightning_unlearn.pipeline.run_experiment` takes ``methods``: a method's short name →
its settings, which the pipeline passes on as keyword arguments to the class that does the
work (``forsaken`` → :class:`~lightning_unlearn.modules.forsaken.ForsakenModule`, ``fnn`` →
:class:`~lightning_unlearn.modules.fnn.FNNModule`, …). A misspelt setting would otherwise
surface as a ``TypeError`` only after the target, the shadow and the retrained model have
trained. :func:`check_methods` reads the receiving signatures instead, so the same mistake
fails in a second, naming the valid settings and the closest one.

Example:
    >>> check_methods({"forsaken": {"iteration": 40}}, available=["forsaken[paper]"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: Expected the settings of `forsaken` to be from ..., but got `iteration`. Did you mean `iterations`?
"""

from __future__ import annotations

import difflib
import functools
import importlib
import inspect
import types
import typing
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args, get_origin

__all__ = [
    "METHOD_SETTINGS",
    "MethodSettings",
    "check_methods",
    "method_settings",
    "resolve_receiver",
    "resolved_settings",
    "split_method_name",
]


@dataclass(frozen=True)
class MethodSettings:
    """Where one method's settings go.

    Args:
        receiver: ``"module:Class"`` (or ``"module:function"``) whose ``__init__`` (or call)
            parameters are the method's settings.
        supplied: parameters of ``receiver`` the pipeline fills in itself (the target, the
            datamodule, the seed …); a user cannot set them.
        extra: settings the pipeline takes before the receiver sees them: setting name →
            ``"module:callable"`` with a parameter of that name (its type, and its default where
            the receiver has none).
        nested: settings whose value is a mapping of keyword arguments for another class:
            setting name → ``"module:Class"``.
        pipeline_defaults: defaults the pipeline sets where they differ from ``receiver``'s (for a
            ``nested`` setting, a mapping of its own; a default computed during the run is
            described in words).
        configure: for a method run in named configurations (``forsaken[paper]``,
            ``forsaken[recommended]``), ``"module:function"`` taking the configuration's name and the
            given settings and returning the settings of that configuration with them on top (it
            raises ``ValueError`` for settings the configuration refuses); ``""`` for none.
        configurations: ``"module:MAPPING"`` of the configurations' names (with ``configure``).
        default_configuration: the configuration a bare method name runs (its row is then named
            ``name[default_configuration]``).
    """

    receiver: str
    supplied: frozenset[str] = frozenset()
    extra: Mapping[str, str] = field(default_factory=dict)
    nested: Mapping[str, str] = field(default_factory=dict)
    pipeline_defaults: Mapping[str, Any] = field(default_factory=dict)
    configure: str = ""
    configurations: str = ""
    default_configuration: str = ""

    def known_configurations(self) -> list[str]:
        """The names of this method's configurations (none for a method without ``configure``)."""
        return list(_resolve(self.configurations)) if self.configurations else []

    def configured(self, configuration: str | None, settings: Mapping[str, Any]) -> dict[str, Any]:
        """``settings`` on top of the named configuration (unknown names and methods without configurations:
        ``settings`` alone, on the receiver's defaults).

        Raises:
            ValueError: settings the configuration refuses (e.g. a departure from the paper's algorithm
                under ``forsaken[paper]``).
        """
        if not self.configure or configuration not in self.known_configurations():
            return dict(settings)
        return dict(_resolve(self.configure)(configuration, **settings))

    @property
    def receiver_name(self) -> str:
        """The receiver's name, e.g. ``"ForsakenModule"``."""
        return self.receiver.rpartition(":")[2]

    def summary(self) -> str:
        """The first line of the receiver's docstring: what the method does, in one line."""
        doc = inspect.getdoc(_resolve(self.receiver)) or self.receiver_name
        return doc.strip().splitlines()[0].replace("``", "").replace(":class:", "").replace("`", "")

    def parameters(self) -> dict[str, inspect.Parameter]:
        """Every setting a user may give: the receiver's parameters less ``supplied``, and ``extra`` and ``nested``."""
        found = {
            name: parameter
            for name, parameter in _parameters(_resolve(self.receiver)).items()
            if name not in self.supplied
        }
        for name, owner in self.extra.items():
            found.setdefault(name, _parameters(_resolve(owner))[name])
        for name in self.nested:
            found[name] = inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None)
        return found


_FORSAKEN = "lightning_unlearn.modules.forsaken"
_FNN = "lightning_unlearn.modules.fnn"
_SISA = "lightning_unlearn.modules.sisa"
_BASELINES = "lightning_unlearn.modules.baselines"
_SISA_SUPPLIED = frozenset({"datamodule", "recipe", "checkpoint_dir", "seed"})
_BASELINE_SUPPLIED = frozenset({"target"})

#: Method name → where its settings go, as the adapters of :data:`lightning_unlearn.pipeline.METHODS` pass them.
METHOD_SETTINGS: dict[str, MethodSettings] = {
    "forsaken": MethodSettings(
        f"{_FORSAKEN}:ForsakenModule",
        frozenset({"target"}),
        configure=f"{_FORSAKEN}:forsaken_configuration",
        configurations=f"{_FORSAKEN}:FORSAKEN_CONFIGURATIONS",
        default_configuration="paper",
    ),
    "fnn": MethodSettings(
        f"{_FNN}:FNNModule",
        frozenset({"target", "seed"}),
        nested={"early_stopping": "lightning_unlearn.callbacks.mia_early_stopping:MIAEarlyStopping"},
        pipeline_defaults={"early_stopping": {"accuracy_floor": "the original model's test accuracy − 0.02"}},
    ),
    "sisa": MethodSettings(
        f"{_SISA}:SISAEnsemble", _SISA_SUPPLIED, pipeline_defaults={"num_shards": 5, "num_slices": 5}
    ),
    "sisa_dp": MethodSettings(
        f"{_SISA}:SISADPEnsemble", _SISA_SUPPLIED, pipeline_defaults={"num_shards": 5, "num_slices": 5}
    ),
    "smu": MethodSettings(
        f"{_BASELINES}:SMUBaseline",
        frozenset({"target", "recorder"}),
    ),
    "finetune": MethodSettings(f"{_BASELINES}:FinetuneBaseline", _BASELINE_SUPPLIED),
    "neggrad": MethodSettings(f"{_BASELINES}:NegGradBaseline", _BASELINE_SUPPLIED),
    "neggrad_plus": MethodSettings(f"{_BASELINES}:NegGradPlusBaseline", _BASELINE_SUPPLIED),
    "random_labels": MethodSettings("lightning_unlearn.modules.random_labels:RandomLabelsBaseline", _BASELINE_SUPPLIED),
    "salun": MethodSettings("lightning_unlearn.modules.salun:SalUnBaseline", _BASELINE_SUPPLIED),
    "scrub": MethodSettings("lightning_unlearn.modules.scrub:SCRUBBaseline", _BASELINE_SUPPLIED),
    "l1_sparse": MethodSettings("lightning_unlearn.modules.l1_sparse:L1SparseBaseline", _BASELINE_SUPPLIED),
}


def split_method_name(name: str) -> tuple[str, str | None]:
    """A method's name and the configuration it names in brackets, if any.

    Example:
        >>> split_method_name("forsaken[recommended]"), split_method_name("fnn")
        (('forsaken', 'recommended'), ('fnn', None))
    """
    if name.endswith("]") and "[" in name:
        base, _, label = name[:-1].partition("[")
        return base, label
    return name, None


def method_settings(name: str, settings: Mapping[str, Any] | None = None) -> MethodSettings | None:
    """The :class:`MethodSettings` of method ``name``, or ``None`` for a method this module does not know.

    A name with a configuration in brackets (``forsaken[recommended]``) has its method's settings.
    With ``settings`` holding a ``class_path`` (a user's method), the settings of that class: its
    ``__init__`` arguments less those the pipeline fills in, as for the built-in method it derives
    from (a ``ForsakenModule`` subclass like ``forsaken``, an ``FNNModule`` subclass like ``fnn``).
    """
    if settings is not None and "class_path" in settings:
        return _class_path_settings(str(settings["class_path"]))
    base, label = split_method_name(name)
    spec = METHOD_SETTINGS.get(base)
    if label is not None and (spec is None or not spec.configure):
        return None
    return spec


def resolve_receiver(path: str) -> Any:
    """The class (or function) ``path`` names: ``"package.module:Name"`` or ``"package.module.Name"``.

    Raises:
        ValueError: ``path`` names no importable module or no such attribute in it.
    """
    if not isinstance(path, str) or not path:
        raise ValueError(f"Expected a class path such as 'my_package.methods.MyMethod', but got {path!r}.")
    module, _, name = path.partition(":") if ":" in path else path.rpartition(".")
    if not module:
        raise ValueError(f"Expected a class path such as 'my_package.methods.MyMethod', but got {path!r}.")
    try:
        return _resolve(f"{module}:{name}")
    except ModuleNotFoundError as error:
        raise ValueError(f"Expected `class_path` {path!r} to name an importable module, but {error}.") from None
    except AttributeError:
        message = f"Expected `class_path` {path!r} to name a class of module {module!r}, but it has none."
        raise ValueError(message) from None


def _class_path_settings(path: str) -> MethodSettings:
    receiver = resolve_receiver(path)
    from lightning_unlearn.modules.base import UnlearningMethod

    if not (inspect.isclass(receiver) and issubclass(receiver, UnlearningMethod)):
        raise TypeError(
            f"Expected `class_path` {path!r} to name a subclass of lightning_unlearn.modules.UnlearningMethod, but"
            f" it names {receiver!r}."
        )
    for built_in in ("forsaken", "fnn", "smu"):
        spec = METHOD_SETTINGS[built_in]
        if issubclass(receiver, _resolve(spec.receiver)):
            return MethodSettings(f"{receiver.__module__}:{receiver.__qualname__}", spec.supplied, nested=spec.nested)
    return MethodSettings(f"{receiver.__module__}:{receiver.__qualname__}", _BASELINE_SUPPLIED)


def check_methods(
    methods: Mapping[str, Mapping[str, Any] | None], available: Collection[str]
) -> dict[str, dict[str, Any]]:
    """Check every method name, setting name and checkable setting value; nothing is run.

    Args:
        methods: method name → its settings (``None`` for none), as ``run_experiment`` takes them.
        available: the method names the pipeline can run.

    Returns:
        ``methods`` as plain dictionaries, in the same order; a method run in named configurations is
        keyed by its configuration (a bare ``forsaken`` becomes ``forsaken[paper]``), so that the
        report's row names it.

    Raises:
        ValueError: an unknown method name, ``class_path`` under a short method name, an unknown
            setting (naming the valid ones and the closest), a value outside a setting's choices, a
            setting a named configuration refuses (``forsaken[paper]`` keeps the paper's algorithm),
            or one method named twice.
        TypeError: ``methods`` or a method's settings is not a mapping, or a value of the wrong type.

    Example:
        >>> check_methods({"forsaken": {"iterations": 40}, "fnn": None}, available=["forsaken[paper]", "fnn"])
        {'forsaken[paper]': {'iterations': 40}, 'fnn': {}}
    """
    if not isinstance(methods, Mapping):
        raise TypeError(
            f"Expected `methods` to be a mapping of method name → settings, but got {type(methods).__name__}."
        )
    unknown = [
        name
        for name, settings in methods.items()
        if name not in available
        and _configured_name(str(name), available) is None
        and not (isinstance(settings, Mapping) and "class_path" in settings)
    ]
    if unknown:
        hints = "".join(" " + _method_name_hint(str(name), available) for name in unknown)
        raise ValueError(
            f"Expected method names from {sorted(available)} (or any name with a `class_path` to a subclass of"
            f" UnlearningMethod), but got {unknown}.{hints}".rstrip()
        )
    checked: dict[str, dict[str, Any]] = {}
    for name, settings in methods.items():
        if settings is None:
            settings = {}
        if not isinstance(settings, Mapping):
            raise TypeError(
                f"Expected the settings of `{name}` to be a mapping of keyword arguments (or null), but got"
                f" {type(settings).__name__} {settings!r}."
            )
        if "class_path" in settings and name not in available and _configured_name(str(name), available) is None:
            checked[name] = dict(settings)
            _check_class_path(name, checked[name])
            continue
        row = _configured_name(str(name), available) or name
        if row in checked:
            raise ValueError(f"Expected each method once, but `{name}` names `{row}` again.")
        checked[row] = dict(settings)
        spec = method_settings(row)
        if spec is not None:
            _check_settings(str(name), spec, checked[row])
            _check_configuration(str(name), row, spec, checked[row])
    return checked


def _configured_name(name: str, available: Collection[str]) -> str | None:
    """``base[configuration]`` of a method run in named configurations (a bare name: its default), else ``None``."""
    base, label = split_method_name(name)
    spec = METHOD_SETTINGS.get(base)
    if spec is None or not spec.configure or not any(split_method_name(a)[0] == base for a in available):
        return None
    if label == "":
        return None
    return f"{base}[{label if label is not None else spec.default_configuration}]"


def _check_configuration(name: str, row: str, spec: MethodSettings, settings: Mapping[str, Any]) -> None:
    """A named configuration's own check of the settings given beside it (``forsaken[paper]`` keeps the paper's)."""
    _, label = split_method_name(row)
    if label is None:
        return
    try:
        spec.configured(label, settings)
    except ValueError as error:
        raise ValueError(f"`{name}` runs `{row}`: {error}") from None


def _check_class_path(name: str, settings: dict[str, Any]) -> None:
    """A user's method: ``{class_path: ..., init_args: {...}}``; its class and its arguments are checked."""
    extra = sorted(set(settings) - {"class_path", "init_args"})
    if extra:
        raise ValueError(
            f"Expected the settings of `{name}` to hold `class_path` and `init_args` alone, but got {extra} too: put"
            " the method's arguments under `init_args`."
        )
    init_args: Any = settings.get("init_args") or {}
    if callable(getattr(init_args, "as_dict", None)):  # the command line's reading of a YAML mapping
        init_args = init_args.as_dict()
    if not isinstance(init_args, Mapping):
        raise TypeError(f"Expected `init_args` of `{name}` to be a mapping, but got {type(init_args).__name__}.")
    settings["init_args"] = dict(init_args)
    spec = method_settings(name, settings)
    assert spec is not None
    _check_settings(name, spec, settings["init_args"])


def resolved_settings(name: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """``settings`` with every default of method ``name`` filled in (for the run's record).

    Args:
        name: the method's short name.
        settings: the settings given.

    Returns:
        Every setting of the method by name: the given value, else the pipeline's default, else
        the receiver's; a method unknown to this module gets ``settings`` back.
    """
    spec = method_settings(name, settings)
    if spec is None:
        return dict(settings)
    if "class_path" in settings:
        return {"class_path": settings["class_path"], "init_args": resolved_settings_of(spec, settings["init_args"])}
    return resolved_settings_of(spec, spec.configured(split_method_name(name)[1], settings))


def resolved_settings_of(spec: MethodSettings, settings: Mapping[str, Any]) -> dict[str, Any]:
    """``settings`` with every default of ``spec``'s receiver (and the pipeline's) filled in."""
    resolved: dict[str, Any] = {}
    receiver = _resolve(spec.receiver)
    for key, parameter in spec.parameters().items():
        if parameter.default is not inspect.Parameter.empty:
            # A default of None that the class fills in (e.g. a baseline's `default_max_epochs`) is recorded as used.
            class_default = getattr(receiver, f"default_{key}", None) if parameter.default is None else None
            resolved[key] = parameter.default if class_default is None else class_default
    resolved.update({key: value for key, value in spec.pipeline_defaults.items() if key not in spec.nested})
    resolved.update(settings)
    for key, owner in spec.nested.items():
        nested = {
            inner: parameter.default
            for inner, parameter in _parameters(_resolve(owner)).items()
            if parameter.default is not inspect.Parameter.empty
        }
        nested.update(spec.pipeline_defaults.get(key, {}))
        nested.update(settings.get(key) or {})
        resolved[key] = nested
    return resolved


# ---------------------------------------------------------------------------- checks
def _check_settings(name: str, spec: MethodSettings, settings: Mapping[str, Any]) -> None:
    if "class_path" in settings or "init_args" in settings:
        raise ValueError(
            f"Expected the settings of `{name}` to be keyword arguments of {spec.receiver_name}, such as"
            f" {{{name}: {{{_example_key(spec)}: ...}}}}, but got `class_path`/`init_args`: a built-in method's class"
            f" is fixed; give a class of your own a name of its own, e.g. {{my_{name}: {{class_path: ...}}}}."
        )
    parameters = spec.parameters()
    added = [key for key in (*spec.extra, *spec.nested) if key not in _parameters(_resolve(spec.receiver))]
    source = f"the arguments of {spec.receiver_name}" + "".join(f", and `{key}`" for key in added)
    _check_keys(f"the settings of `{name}`", source, settings, parameters)
    hints = _type_hints(spec)
    for key, value in settings.items():
        if key in spec.nested:
            _check_nested(name, key, spec.nested[key], value)
        elif key in hints:
            _check_value(f"`{key}` of `{name}`", hints[key], value)


def _check_nested(name: str, key: str, owner: str, value: Any) -> None:
    if value is None:
        return
    receiver = _resolve(owner)
    if not isinstance(value, Mapping):
        raise TypeError(
            f"Expected `{key}` of `{name}` to be a mapping of {receiver.__name__} arguments, but got"
            f" {type(value).__name__} {value!r}."
        )
    parameters = _parameters(receiver)
    _check_keys(f"`{key}` of `{name}`", f"the arguments of {receiver.__name__}", value, parameters)
    hints = _hints_of(receiver, parameters)
    for inner, inner_value in value.items():
        if inner in hints:
            _check_value(f"`{key}.{inner}` of `{name}`", hints[inner], inner_value)


def _check_keys(what: str, source: str, settings: Mapping[str, Any], parameters: Mapping[str, Any]) -> None:
    unknown = [str(key) for key in settings if key not in parameters]
    if not unknown:
        return
    valid = sorted(parameters)
    got = " and ".join(f"`{key}`" for key in unknown)
    hints = []
    for key in unknown:
        close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
        if close:
            hints.append(f"Did you mean `{close[0]}`" + (f" for `{key}`?" if len(unknown) > 1 else "?"))
    hint = (" " + " ".join(hints)) if hints else ""
    raise ValueError(f"Expected {what} to be from {valid} ({source}), but got {got}.{hint}")


_TYPE_WORDS: dict[type, str] = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}


def _check_value(what: str, hint: Any, value: Any) -> None:
    """Check ``value`` against a hint made of Literals, bool, int, float, str and None; skip any other hint."""
    options = list(get_args(hint)) if _is_union(hint) else [hint]
    nullable = type(None) in options
    options = [option for option in options if option is not type(None)]
    literals = [option for option in options if get_origin(option) is Literal]
    plain = [option for option in options if option in _TYPE_WORDS]
    if not options or len(literals) + len(plain) != len(options):
        return  # a type this check does not read (an optimiser, a path …): the receiver checks it
    choices = [choice for literal in literals for choice in get_args(literal)]
    if value is None and nullable:
        return
    if (not isinstance(value, bool) and value in choices) or any(_is_instance(value, kind) for kind in plain):
        return
    if choices and not plain:
        close = difflib.get_close_matches(str(value), [str(choice) for choice in choices], n=1, cutoff=0.6)
        hint_text = f" Did you mean `{close[0]}`?" if close else ""
        raise ValueError(f"Expected {what} to be one of {choices}, but got {value!r}.{hint_text}")
    expected = " or ".join([_TYPE_WORDS[kind] for kind in plain] + ([f"one of {choices}"] if choices else []))
    raise TypeError(f"Expected {what} to be {expected}, but got {type(value).__name__} {value!r}.")


def _is_instance(value: Any, kind: type) -> bool:
    if isinstance(value, bool):
        return kind is bool
    if kind is float:
        return isinstance(value, (int, float))
    return isinstance(value, kind)


def _is_union(hint: Any) -> bool:
    return get_origin(hint) in (typing.Union, types.UnionType)


# ---------------------------------------------------------------------------- hints
def _method_name_hint(name: str, available: Collection[str]) -> str:
    short = name.rpartition(".")[2]
    names = sorted({*available, *(split_method_name(method)[0] for method in available)})
    for method, spec in METHOD_SETTINGS.items():
        if method in names and short == spec.receiver_name:
            return f"A method is named by its short name: `{name}` is `{method}`."
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    return f"Did you mean `{close[0]}`?" if close else ""


def _example_key(spec: MethodSettings) -> str:
    names = [name for name in spec.parameters() if name not in spec.nested]
    return names[0] if names else "setting"


@functools.cache
def _resolve(path: str) -> Any:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def _owners(receiver: Any) -> list[Any]:
    """``receiver``, then the bases its ``__init__`` forwards ``**kwargs`` to, as far as they forward."""
    if not inspect.isclass(receiver):
        return [receiver]
    owners = []
    for owner in receiver.__mro__:
        if "__init__" not in vars(owner) or owner is object:
            continue
        owners.append(owner)
        kinds = [p.kind for p in inspect.signature(vars(owner)["__init__"]).parameters.values()]
        if inspect.Parameter.VAR_KEYWORD not in kinds:
            break
    return owners


def _parameters(receiver: Any) -> dict[str, inspect.Parameter]:
    """The named parameters of ``receiver``; a class whose ``__init__`` forwards ``**kwargs`` gets its bases' too."""
    found: dict[str, inspect.Parameter] = {}
    for owner in _owners(receiver):
        function = owner.__init__ if inspect.isclass(owner) else owner
        for name, parameter in inspect.signature(function).parameters.items():
            if name != "self" and parameter.kind not in (
                inspect.Parameter.VAR_POSITIONAL,
                inspect.Parameter.VAR_KEYWORD,
            ):
                found.setdefault(name, parameter)
    return found


def _type_hints(spec: MethodSettings) -> dict[str, Any]:
    hints = _hints_of(_resolve(spec.receiver), spec.parameters())
    for name, owner in spec.extra.items():
        hints.update(_hints_of(_resolve(owner), {name: None}))
    return hints


def _hints_of(receiver: Any, names: Collection[str]) -> dict[str, Any]:
    """Evaluated annotations of ``receiver``'s parameters among ``names``; one that cannot be evaluated is left out."""
    found: dict[str, Any] = {}
    for owner in reversed(_owners(receiver)):  # a subclass's annotation wins over its base's
        function: Callable[..., Any] = owner.__init__ if inspect.isclass(owner) else owner
        scope = vars(importlib.import_module(function.__module__))
        for name, annotation in getattr(function, "__annotations__", {}).items():
            if name not in names:
                continue
            try:
                found[name] = eval(annotation, scope) if isinstance(annotation, str) else annotation
            except Exception:  # an annotation naming a type only imported for type checkers
                continue
    return found
