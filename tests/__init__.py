"""wabot's tests: one folder per package of wabot/, shared fakes beside them, fixtures under data/."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the repository
DEMO = ROOT / "flows"  # the shipped demo shop
DATA = Path(__file__).resolve().parent / "data"
PAYLOADS = DATA / "payloads"  # Meta's, pywa's and our webhook samples, Meta's message schema
FIXTURES = DATA / "flows"  # flow files made to be broken or odd
