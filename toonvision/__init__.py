"""toonvision: from labelled game screenshots to trained, explained image classifiers.

The package is a library first; `toonvision.cli` is a thin command line over it. Importing
`toonvision` does not import Keras, so data tools stay quick.
"""

__version__ = "0.1.0"
