"""The LeakyReLU study (issue #10): is the shift-only LeakyReLU free, and does training at a
power-of-two slope remove its post-training-quantisation accuracy loss, for whole networks?

For each model and training seed, three float networks are trained (ReLU, LeakyReLU 0.3,
LeakyReLU 0.25) and quantised at each bit width (activations and weights) into five variants:

* ``relu``          -- the ReLU network (control);
* ``mult``          -- the 0.3 network, LeakyReLU as a constant multiplier (slope 0.3 quantised);
* ``shift_ptq``     -- the 0.3 network, slope rounded to 2^-2 after training (a shift);
* ``shift_trained`` -- the network trained at 0.25 = 2^-2 (the shift is exact);
* ``shift_qat``     -- ``shift_ptq`` fine-tuned by QAT (straight-through estimator).

Accuracy is the test accuracy of the spec's integer codes (:mod:`qspec.integer_forward`).
The accuracy cost of a shift variant is its paired difference to ``mult`` (same model, bits
and seed), with a two-sided 95 % Student-t interval over seeds.  Hardware (LUT-equivalents,
DSPs, latency, Fmax) comes from synthesising the generated networks
(:func:`hdl.synth.network.synthesise_network_total`), for the first ``hw_seeds`` seeds.

``python -m studies.leaky`` (or ``python -m search study``; ``nox -s study``) writes
``docs/leaky_study.md``, ``docs/leaky_study_*.png`` and ``bench/results/leaky_study.json``
(relative to the current directory unless ``--docs``/``--json`` say otherwise).
Trained networks (and QAT results) are kept in a study directory and reused on a rerun.

Modules: :mod:`.config` (what to run), :mod:`.run` (training, quantising, hardware rows),
:mod:`.stats` (t intervals, paired deltas, verdict), :mod:`.render` (page, plots, JSON),
:mod:`.cli`.
"""
