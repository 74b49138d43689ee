"""AISE: Gaussian perturbations placed by a derivative-free optimiser (DIRECT), for
classification and detection models."""
