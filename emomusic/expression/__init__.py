"""Expression: how the generated notes are played (velocities, voicing, sustain pedal).

The generator's vocabulary writes 16 velocity levels and no pedal, so its pieces sound like a
sequencer. `ExpressionModel` is a small model learned from performances that renders them: it keeps
the generator's dynamic level (the emotion's loudness) and adds what performers do on top of it.
"""

from emomusic.expression.model import ExpressionModel, load_expression

__all__ = ["ExpressionModel", "load_expression"]
