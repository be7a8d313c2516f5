"""The pure domain: case model, identity numbers, rules and findings. Standard library only."""
