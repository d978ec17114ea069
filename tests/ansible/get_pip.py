"""Stand-in for get-pip.py, for `make sanity` (ansible-test sanity on the collection).

ansible-test bootstraps pip into each sanity test's venv with get-pip.py downloaded from
ci-files.testing.ansible.com, or a copy cached at ~/.ansible/test/cache/get_pip_X_Y.py;
`make sanity` puts this file there (under a HOME inside the venv), so only the package
index is needed. It does what get-pip does: bootstrap
pip from Python's own bundled wheel (ensurepip), then install what get-pip would install
(its arguments are pip install arguments, plus get-pip's own --no-setuptools/--no-wheel)
from the configured package index. ensurepip runs as its own process: in this one it
would set PIP_CONFIG_FILE=/dev/null, and the pip install after it would lose the
machine's pip configuration (index, certificate)."""

import subprocess
import sys

OWN = {"--no-setuptools", "--no-wheel"}
subprocess.run([sys.executable, "-m", "ensurepip", "--upgrade"], check=True)
args = [a for a in sys.argv[1:] if a not in OWN]
subprocess.run([sys.executable, "-m", "pip", "install", *args], check=True)
if "--no-setuptools" in sys.argv:  # ensurepip brought setuptools; get-pip would not
    subprocess.run([sys.executable, "-m", "pip", "uninstall", "-q", "-y", "setuptools"], check=True)
