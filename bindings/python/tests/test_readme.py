"""The README's first Python example runs (against our broker, not 1883)."""

import os
import re

README = os.path.join(os.path.dirname(__file__), "..", "README.md")


def test_readme_example_runs(broker, capsys):
    with open(README) as f:
        text = f.read()
    block = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    assert "mqtt://127.0.0.1:1883" in block
    exec(compile(block.replace("mqtt://127.0.0.1:1883", broker.url), "README.md", "exec"), {})
