# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""Class names of a VIM transformer (`config.id2label`) and the class ids they stand for: the lookup behind
`VimPipeline.get_label_ids` and `pipe.labels`."""

import difflib


def label_maps(id2label: dict[int, str] | None) -> tuple[dict[str, int], dict[str, list[int]]]:
    """
    Map every synonym of every class name to its class id. A synonym of several classes goes to the class it is the
    first synonym of, if exactly one; otherwise it goes to the second map, of ambiguous names and their classes.
    """
    first_of, synonym_of = {}, {}
    for class_id, entry in sorted((id2label or {}).items()):
        synonyms = [synonym.strip() for synonym in entry.split(",") if synonym.strip()]
        for index, synonym in enumerate([entry.strip(), *synonyms]):
            synonym_of.setdefault(synonym, []).append(class_id)
            if index <= 1:  # the whole entry and its first synonym
                first_of.setdefault(synonym, []).append(class_id)
    labels, ambiguous = {}, {}
    for name, class_ids in synonym_of.items():
        class_ids = sorted(set(class_ids))
        primary = sorted(set(first_of.get(name, [])))
        if len(class_ids) == 1:
            labels[name] = class_ids[0]
        elif len(primary) == 1:
            labels[name] = primary[0]
        else:
            ambiguous[name] = class_ids
    return dict(sorted(labels.items())), ambiguous


def find_label_ids(
    names: list[str], labels: dict[str, int], ambiguous: dict[str, list[int]], id2label: dict[int, str]
) -> list[int]:
    """
    The class id of each name in `names`, through the maps of [`label_maps`]: exact matches first, then
    case-insensitive ones. An unknown name raises a `ValueError` that suggests the closest names; a name shared by
    several classes raises one that lists them (`id2label` gives their full entries).
    """
    lowercase = {name.lower(): name for name in [*labels, *ambiguous]}
    class_ids = []
    for name in names:
        if not isinstance(name, str):
            raise ValueError(f"Class names must be strings, got {name!r}.")
        key = name.strip()
        key = key if key in labels or key in ambiguous else lowercase.get(key.lower(), key)
        if key in ambiguous:
            candidates = ", ".join(f"{class_id} ({id2label[class_id]!r})" for class_id in ambiguous[key])
            raise ValueError(f"The class name {name!r} is ambiguous: it names classes {candidates}. Pass the id.")
        if key not in labels:
            suggestions = difflib.get_close_matches(key, [*labels, *ambiguous], n=5)
            hint = f" Did you mean one of {suggestions}?" if suggestions else " See `pipe.labels` for the names."
            raise ValueError(f"Unknown class name {name!r}.{hint}")
        class_ids.append(labels[key])
    return class_ids


__all__ = ["find_label_ids", "label_maps"]
