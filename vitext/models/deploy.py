"""Re-parameterising a whole model for inference (torch only).

A module with a ``switch_to_deploy()`` method re-parameterises itself and everything it holds
(a Slide attention layer its convs; a Slide backbone, through :func:`switch_submodules_to_deploy`,
its attention layers; mmpretrain's RepVGG its blocks). :func:`switch_to_deploy` calls that method
on the outermost such modules and does not descend into them, so each module is switched once.
"""
from typing import List, Set

from torch import nn


def switch_to_deploy(model: nn.Module) -> List[str]:
    """Switch ``model`` to its deploy form, each re-parameterisable module once.

    Args:
        model: any module; ``model`` itself is switched by its own ``switch_to_deploy()`` when
            it has one, otherwise its submodules are walked.

    Returns:
        The names of the switched modules in ``named_modules()`` order, '' for ``model``
        itself, followed for each by the names of the modules its method reports switching
        (a Slide backbone's attention layers).
    """
    return _switch(model, set())


def switch_submodules_to_deploy(module: nn.Module) -> List[str]:
    """The walk of :func:`switch_to_deploy` over ``module``'s submodules, not ``module`` itself:
    the body of a container's own ``switch_to_deploy()``. Returns the names switched."""
    return _switch_children(module, {id(module)})


def _switch(module: nn.Module, seen: Set[int]) -> List[str]:
    if id(module) in seen:  # a module held twice is switched once
        return []
    seen.add(id(module))
    if not hasattr(module, 'switch_to_deploy'):
        return _switch_children(module, seen)
    inner = module.switch_to_deploy()
    return [''] + (list(inner) if isinstance(inner, list) else [])


def _switch_children(module: nn.Module, seen: Set[int]) -> List[str]:
    names = []
    for child_name, child in module.named_children():
        names += [f'{child_name}.{name}' if name else child_name
                  for name in _switch(child, seen)]
    return names
