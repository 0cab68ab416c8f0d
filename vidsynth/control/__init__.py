"""Structure guidance: ControlNet maps of the clip (edges, depth, or a control video) and the ControlNets.

A control is resolved once with the request (:class:`ControlSpec`), its maps are made per frame from
the very frames that are edited (:func:`control_maps`, cached like the inversion), and its ControlNet
is loaded next to the pipeline (:func:`load_controlnets`); ``TuneAVideoPipeline`` runs it per frame.
"""

from vidsynth.control.controlnets import load_controlnets
from vidsynth.control.maps import control_maps
from vidsynth.control.spec import ControlSpec

__all__ = ["ControlSpec", "control_maps", "load_controlnets"]
