"""Config fuzzing: whatever YAML tree or --set string comes in, the loader answers with Settings or one line.

Hypothesis draws random trees (sections and keys near the real ones, values of every YAML kind) and random
``--set`` strings; anything but a Settings or a one-line UserInputError fails the test.
"""

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ms_ppo.config import Settings, load_settings, parse_override
from ms_ppo.config.loading import NATIVE_SECTIONS
from ms_ppo.config.reference import REFERENCE_SECTIONS
from ms_ppo.errors import UserInputError

KEYS = sorted({name for section in Settings.model_fields.values() for name in section.annotation.model_fields})
SECTIONS = sorted(set(NATIVE_SECTIONS) | set(REFERENCE_SECTIONS) | {"algo_yaml"})
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10 ** 12, 10 ** 12),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
                    st.sampled_from(["auto", "CPU", "fp16", "CartPole-v1", "1e-3", "[64, 64]", "O2"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                        st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)),
                      max_leaves=12)
names = st.one_of(st.sampled_from(SECTIONS), st.text(min_size=1, max_size=8))
trees = st.dictionaries(names, st.one_of(st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=6)),
                                                         values, max_size=6), values), max_size=5)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def answers_in_one_line(load) -> None:
    try:
        assert isinstance(load(), Settings)
    except UserInputError as error:
        message = str(error)
        assert message and "\n" not in message, message


@FUZZ
@given(tree=trees, as_env=st.booleans())
def test_random_yaml_trees_load_or_fail_in_one_line(tmp_path, tree, as_env):
    path = tmp_path / "fuzz.yaml"
    path.write_text(yaml.safe_dump(tree))
    answers_in_one_line(lambda: load_settings(str(path)) if as_env else load_settings(None, str(path)))


@FUZZ
@given(text=st.one_of(st.text(max_size=40),
                      st.builds(lambda section, key, value: f"{section}.{key}={value}", st.sampled_from(SECTIONS),
                                st.sampled_from(KEYS), st.text(max_size=20))))
def test_random_set_strings_load_or_fail_in_one_line(text):
    def load():
        key, value = parse_override(text)
        return load_settings(overrides={key: value})
    answers_in_one_line(load)


@FUZZ
@given(text=st.text(max_size=200))
def test_random_bytes_as_a_yaml_file_fail_in_one_line(tmp_path, text):
    path = tmp_path / "text.yaml"
    path.write_text(text)
    answers_in_one_line(lambda: load_settings(str(path)))
