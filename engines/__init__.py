"""The bundled model packages (`.onnx` + `.json`), their checkpoint, metrics and model card.

In the repo this is the top-level `engines/`; the wheel ships it as the package `rtseg._bundled`
(see setup.py). Code finds it with `rtseg.core.package.engines_dir()`, never by this path.
"""
