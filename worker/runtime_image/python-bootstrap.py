"""Start awslambdaric with the module search path Lambda gives Python functions.

Runs as /var/runtime/bootstrap.py, so /var/runtime (awslambdaric and its
dependencies) is already on sys.path as the script's folder. On Lambda the
function's code comes first, then the layers under /opt, unless the function
sets PYTHONPATH itself, in which case the layer folders are left to it. `.pth`
files in those folders are honoured, as pip --target installs may rely on them.
Child processes get PYTHONPATH=/var/runtime, as documented for Lambda.
"""

import importlib
import os
import site
import sys


def main() -> None:
    task_root = os.environ.get("LAMBDA_TASK_ROOT", "/var/task")
    runtime_dir = os.environ.get("LAMBDA_RUNTIME_DIR", "/var/runtime")
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    layer_dirs = [f"/opt/python/lib/python{version}/site-packages", "/opt/python"]
    function_sets_path = "PYTHONPATH" in os.environ

    front = [task_root] if function_sets_path else [task_root, *layer_dirs]
    sys.path[:0] = front
    site.addsitedir(task_root)
    if not function_sets_path:
        for folder in layer_dirs:
            site.addsitedir(folder)
        os.environ["PYTHONPATH"] = runtime_dir

    # Imported by name, after sys.path is final, as the function's modules are.
    ric = importlib.import_module("awslambdaric.__main__")
    ric.main([sys.argv[0], os.environ["_HANDLER"]])


if __name__ == "__main__":
    main()
