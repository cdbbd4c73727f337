//! The 256 words the verification words are drawn from: common, concrete, easy to say and
//! to tell apart, so two people can read them to each other.

pub const WORDS: [&str; 256] = [
    "acid", "acorn", "actor", "adobe", "agent", "alarm", "album", "alert", "alley", "alpha",
    "amber", "angle", "ankle", "apple", "apron", "arena", "armor", "arrow", "atlas", "atom",
    "attic", "audio", "autumn", "avenue", "bacon", "badge", "bagel", "baker", "bamboo", "banana",
    "banjo", "barrel", "basil", "basin", "beach", "beacon", "beard", "beetle", "bell", "bench",
    "berry", "bison", "blade", "blanket", "blaze", "bloom", "bottle", "boulder", "bow", "bread",
    "brick", "bridge", "bronze", "brook", "broom", "bubble", "bucket", "buffalo", "bugle",
    "button", "cabin", "cactus", "camel", "candle", "canoe", "canyon", "carbon", "carpet",
    "carrot", "castle", "cedar", "cello", "chalk", "cherry", "chess", "chimney", "circle",
    "citrus", "clock", "cloud", "clover", "cobalt", "cocoa", "comet", "copper", "coral", "cotton",
    "cougar", "crane", "crater", "crayon", "cricket", "crystal", "cupcake", "daisy", "dancer",
    "delta", "desert", "diamond", "dolphin", "domino", "donkey", "dragon", "drum", "eagle", "echo",
    "eclipse", "elbow", "ember", "engine", "falcon", "fern", "ferry", "fiddle", "fig", "flame",
    "flute", "forest", "fossil", "fountain", "fox", "galaxy", "garden", "garlic", "gazelle",
    "geyser", "ginger", "glacier", "globe", "granite", "grape", "gravel", "guitar", "hammer",
    "harbor", "harp", "hazel", "helmet", "heron", "honey", "hornet", "island", "ivory", "jacket",
    "jaguar", "jasmine", "jelly", "jigsaw", "jungle", "kayak", "kettle", "kitten", "koala",
    "ladder", "lagoon", "lantern", "lemon", "lily", "lizard", "locket", "lotus", "magnet", "mango",
    "maple", "marble", "meadow", "melon", "meteor", "mint", "mirror", "mitten", "monkey", "moose",
    "mosaic", "muffin", "nectar", "needle", "nickel", "noodle", "oasis", "ocean", "olive", "onion",
    "orbit", "orchid", "otter", "oyster", "paddle", "panda", "paper", "parrot", "peach", "pebble",
    "pepper", "piano", "pillow", "pine", "planet", "plum", "pocket", "pony", "poppy", "potato",
    "prism", "pumpkin", "puzzle", "quartz", "rabbit", "radar", "raven", "ribbon", "river", "robin",
    "rocket", "saddle", "salmon", "sapphire", "satin", "scarf", "shadow", "shell", "silver",
    "sketch", "sparrow", "spider", "spoon", "spruce", "squash", "starfish", "stone", "summit",
    "sunset", "swan", "tango", "teapot", "thunder", "tiger", "timber", "tomato", "topaz", "tulip",
    "tunnel", "turtle", "umbrella", "valley", "velvet", "violin", "walnut", "walrus", "whale",
    "willow", "window", "winter", "wizard", "yogurt", "zebra",
];

#[cfg(test)]
mod tests {
    #[test]
    fn the_words_are_distinct_lowercase_and_short() {
        let mut seen = std::collections::HashSet::new();
        for word in super::WORDS {
            assert!(seen.insert(word), "{word} twice");
            assert!(
                word.len() <= 8 && word.bytes().all(|b| b.is_ascii_lowercase()),
                "{word}"
            );
        }
    }
}
