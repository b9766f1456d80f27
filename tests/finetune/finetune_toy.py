"""Shared settings of the fine-tuning tests (imported by name: pytest puts this folder on
``sys.path``)."""

#: Small, fast settings every fine-tuning test starts from.
FAST = ["max_seq_length=32", "batch_size=16", "eval_every=5", "max_steps=10", "progress=false"]

SCIFI = ["Starship voyage to a distant galaxy", "Alien invasion of a space station", "Robots rebel on Mars",
         "Time machine adventure across centuries", "Astronauts lost near a black hole",
         "Laser battle between star fleets", "Colony ship wakes up in deep space", "Android detective on the moon"]
COOKING = ["Baking sourdough bread at home", "Italian pasta and tomato sauce", "Grilling vegetables in summer",
           "French pastry and croissants", "Quick vegetarian curry recipes", "Chocolate cake for birthdays",
           "Slow-cooked beef stew", "Fresh salads with citrus dressing"]
