"""Issue 15: XYClassifier and ScatteringClassifier conform to scikit-learn and refuse what they cannot use.

``parametrize_with_checks`` runs scikit-learn's estimator checks on tiny, fast instances (no check is expected to
fail; the checks that do not apply are declared by the estimators' tags: dense input only, no NaN, and non-negative
grey levels for ScatteringClassifier). The ``test_defect_*`` tests reproduce the defects of the issue.
"""
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning
from sklearn.exceptions import NotFittedError as SklearnNotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks

from pyosc.errors import InvalidInputError, PyoscError
from pyosc.estimators import ScatteringClassifier, XYClassifier

# Tiny instances that still learn scikit-learn's blobs (> 83 % accuracy, check_classifiers_train); one XY program
# is compiled per network shape, so no hidden layer and the relaxation that compiles fastest keep the checks fast.
XY = dict(hidden="layered:0", optimizer="adam", learning_rate=0.1, n_iterations=30, batch_per_class=5,
          method="continuation")
SCATTERING = dict(hidden=0, replication=4, n_iterations=50, batch_size=20, optimizer="adam", learning_rate=0.05)

X4 = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 0.0], [1.0, 1.0], [0.2, 0.9], [0.9, 0.1]])
Y4 = np.array([0, 1, 0, 1, 0, 1])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks([XYClassifier(**XY), ScatteringClassifier(**SCATTERING)])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def _both():
    return [XYClassifier(**XY, random_state=0), ScatteringClassifier(**SCATTERING, random_state=0)]


def _pixels(X):
    return 16 * np.asarray(X)


# --- the defects of the issue -----------------------------------------------------------------------------

def test_defect_negative_hidden_sizes():
    with pytest.raises(InvalidInputError, match=r"hidden must be an integer in \[0, 10000\], got -1"):
        ScatteringClassifier(hidden=-1).fit(_pixels(X4), Y4)
    with pytest.raises(InvalidInputError, match="hidden must be 'layered:H' or 'all-to-all:H' .*got 'layered:-1'"):
        XYClassifier(hidden="layered:-1").fit(X4, Y4)


def test_defect_infinite_input_range():
    with pytest.raises(InvalidInputError, match=r"input_range must be None or a pair \(min, max\) of finite numbers"):
        XYClassifier(**XY, input_range=(0, np.inf)).fit(X4, Y4)


def test_defect_complex_inputs_lose_their_imaginary_part():
    for clf, X in zip(_both(), (X4, _pixels(X4))):
        with pytest.raises(InvalidInputError, match="X must be real"):
            clf.fit(X + 1j, Y4)
        with pytest.raises(InvalidInputError, match="y must be real"):
            clf.fit(X, Y4 + 1j)


@pytest.mark.parametrize("y, kind", [([0, 1, np.nan, 1, 0, 1], "NaN"), ([0.3, 0.7, 0.31, 0.71, 0.3, 0.7], "continuous")])
def test_defect_nan_or_continuous_labels_become_classes(y, kind):
    for clf, X in zip(_both(), (X4, _pixels(X4))):
        with pytest.raises(InvalidInputError, match=kind):
            clf.fit(X, y)


def test_defect_unseen_test_labels_score_zero():
    clf = ScatteringClassifier(**SCATTERING, random_state=0).fit(_pixels(X4), Y4)
    with pytest.raises(InvalidInputError, match=r"y holds labels that fit never saw: \[5\]"):
        clf.score(_pixels(X4), [5] * 6)


def test_defect_unfitted_predict():
    for clf in _both():
        for method in (clf.predict, clf.decision_function, lambda X, c=clf: c.score(X, Y4)):
            with pytest.raises(SklearnNotFittedError, match="not fitted") as info:
                method(X4)
            assert isinstance(info.value, PyoscError)


def test_a_failed_fit_leaves_the_estimator_unfitted():
    clf = ScatteringClassifier(**SCATTERING, random_state=0).fit(_pixels(X4), Y4)
    with pytest.raises(InvalidInputError, match="Negative values"):
        clf.fit(-_pixels(X4), Y4)
    with pytest.raises(SklearnNotFittedError):
        clf.predict(_pixels(X4))


def test_defect_empty_dataset():
    for clf in _both():
        with pytest.raises(InvalidInputError, match="0 sample"):
            clf.fit(np.zeros((0, 2)), np.zeros(0))


@pytest.mark.parametrize("key, value", [("n_iterations", 2.5), ("n_iterations", True), ("random_state", -1),
                                        ("learning_rate", np.nan), ("optimizer", "rmsprop")])
def test_defect_parameters_named_in_errors(key, value):
    for clf, X in zip(_both(), (X4, _pixels(X4))):
        with pytest.raises(InvalidInputError, match=f"^{key} must be"):
            clf.set_params(**{key: value}).fit(X, Y4)
    with pytest.raises(InvalidInputError, match="^batch_size must be an integer >= 1"):
        ScatteringClassifier(batch_size=-1).fit(_pixels(X4), Y4)


def test_defect_random_state_none_predictions_differ_between_calls():
    clf = XYClassifier(**XY).fit(X4, Y4)
    np.testing.assert_array_equal(clf.output_phases(X4), clf.output_phases(X4))
    assert isinstance(clf.seed_, int)


def test_predictions_do_not_depend_on_the_other_samples():
    clf = XYClassifier(**XY, random_state=0).fit(X4, Y4)
    whole = clf.output_phases(X4)
    one_by_one = np.concatenate([clf.output_phases(X4[i:i + 1]) for i in range(len(X4))])
    np.testing.assert_array_equal(whole, one_by_one)
    np.testing.assert_array_equal(clf.output_phases(X4[::-1]), whole[::-1])


def test_binary_decision_function_has_one_column():
    for clf, X in zip(_both(), (X4, _pixels(X4))):
        clf.fit(X, np.array(["no", "yes"])[Y4])
        d = clf.decision_function(X)
        assert d.shape == (len(X),)
        np.testing.assert_array_equal(clf.predict(X), clf.classes_[(d > 0).astype(int)])


def test_scattering_refuses_pixels_outside_the_grey_levels():
    clf = ScatteringClassifier(**SCATTERING, random_state=0).fit(_pixels(X4), Y4)
    with pytest.raises(InvalidInputError, match="Negative values in data passed to ScatteringClassifier"):
        clf.predict(-_pixels(X4))
    with pytest.raises(InvalidInputError, match=r"pixels must lie in \[0, 16\]"):
        clf.predict(_pixels(X4) + 1)


# --- properties: fit and predict give classes or a pyosc error ---------------------------------------------

ODD_VALUE = st.sampled_from([np.nan, np.inf, -1.0, 1e300, 17.0, -1e300])
ODD_LABEL = st.sampled_from([0.5, np.nan, None, "a"])


def _spoil(data, values: list, odd) -> list:
    """``values`` as they are (half of the examples), or with one entry replaced by an odd one."""
    if values and data.draw(st.booleans()):
        values[data.draw(st.integers(0, len(values) - 1))] = data.draw(odd)
    return values


@settings(max_examples=20, derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck))
@given(n=st.integers(0, 8), d=st.integers(1, 3), data=st.data())
def test_property_scattering_fit_predict(n, d, data):
    X = np.array(_spoil(data, data.draw(st.lists(st.floats(0, 16), min_size=n * d, max_size=n * d)), ODD_VALUE),
                 dtype=float).reshape(n, d)
    y = _spoil(data, data.draw(st.lists(st.sampled_from([0, 1, 2]), min_size=n, max_size=n)), ODD_LABEL)
    clf = ScatteringClassifier(hidden=data.draw(st.sampled_from([0, 2])), n_iterations=2, batch_size=4, random_state=0)
    try:
        clf.fit(X, y)
    except PyoscError as e:
        event(f"refused: {type(e).__name__}")
        return
    event("fitted")
    d_out = clf.decision_function(X)
    assert np.all(np.isfinite(d_out))
    assert set(clf.predict(X)) <= set(clf.classes_)


@settings(max_examples=12, derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data(), beta=st.sampled_from([0.1, 1e-3, 1.0, 0.0, np.inf]),
       learning_rate=st.sampled_from([0.1, 1e-3, 1e3, 1e300, np.nan]),
       input_range=st.sampled_from([None, None, (-5.0, 5.0), (0.0, 1e-300), (1.0, -1.0)]))
def test_property_xy_fit_predict(data, beta, learning_rate, input_range):
    """One network shape (2 features, 2 classes) so that one program serves every example."""
    clf = XYClassifier(**{**XY, "n_iterations": 3, "beta": beta, "learning_rate": learning_rate,
                          "input_range": input_range, "random_state": 0})
    X = np.array(_spoil(data, data.draw(st.lists(st.floats(-5, 5), min_size=12, max_size=12)), ODD_VALUE)).reshape(6, 2)
    y = [0, 1] + data.draw(st.lists(st.sampled_from([0, 1]), min_size=4, max_size=4))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(X, y)
            d = clf.decision_function(X)
    except PyoscError as e:
        event(f"refused: {str(e)[:40]}")
        return
    event("fitted")
    assert d.shape == (6,) and np.all(np.isfinite(d))
