"""Video models: one :class:`~bebias.models.backbones.Backbone` interface over every 3D CNN."""
