"""One module per pillar, named after its DVC stage; each is a pure core plus a thin `main` edge."""
