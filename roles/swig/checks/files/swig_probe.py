"""Run on a swig host: import the SWIG example module the way a user would, evaluate expressions.

Usage: python3 -c "$(cat swig_probe.py)" EXPR [EXPR ...], run from the directory to import from
(-c keeps the working directory first on sys.path, as for a user at the prompt).
Prints one JSON object: {"file": example.__file__, "ext": _example.__file__, "results": {EXPR:
{"value" (if JSON-able), "repr", "type"} or {"error"}}}, or {"import_error": traceback} when the import fails.
Expressions see the names example, _example and time.
"""

import json
import sys
import time
import traceback


def main() -> None:
    try:
        import _example
        import example
    except Exception:
        print(json.dumps({"import_error": traceback.format_exc(limit=2), "path": sys.path}))
        return
    names = {"example": example, "_example": _example, "time": time}
    results = {}
    for expr in sys.argv[1:]:
        try:
            value = eval(expr, names)
        except Exception as exc:
            results[expr] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        entry = {"repr": repr(value), "type": type(value).__name__}
        try:
            json.dumps(value)
            entry["value"] = value
        except (TypeError, ValueError):
            pass
        results[expr] = entry
    print(json.dumps({"file": example.__file__, "ext": _example.__file__, "results": results}))


main()
