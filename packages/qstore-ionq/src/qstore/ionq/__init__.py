"""IonQ backends for Q-Store (in progress)."""
