"""Pinecone state store for Q-Store (in progress)."""
