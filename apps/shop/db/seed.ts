/** The catalog every fresh shop starts with: 24 products in six categories. @module */
import type { Product } from './types.js';

type Seed = [id: string, name: string, priceCents: number, category: string, hue: number, description: string];

const SEEDS: Seed[] = [
  ['trail-runner', 'Trail Runner Shoes', 11_900, 'Outdoor', 18, 'Grippy, light and quick to dry: made for muddy mornings and rocky ridgelines.'],
  ['summit-daypack', 'Summit Daypack 22 L', 8_450, 'Outdoor', 140, 'A 22-litre pack with a padded back panel, hip belt and a sleeve for a water bladder.'],
  ['camp-mug', 'Enamel Camp Mug', 1_400, 'Outdoor', 205, 'Steel mug with a speckled enamel finish. Survives campfires and dishwashers alike.'],
  ['headlamp', 'Rechargeable Headlamp', 3_299, 'Outdoor', 48, '400 lumens, red night mode and USB-C charging. Four hours on high.'],
  ['pour-over', 'Ceramic Pour-Over', 2_800, 'Kitchen', 28, 'Hand-glazed dripper for one or two cups, with a wide base that fits most mugs.'],
  ['chef-knife', "Chef's Knife 20 cm", 7_900, 'Kitchen', 0, 'Forged stainless steel with a full tang and a balanced walnut handle.'],
  ['cast-iron', 'Cast-Iron Skillet', 4_500, 'Kitchen', 12, 'Pre-seasoned 26 cm skillet that goes from stove top to oven to table.'],
  ['linen-towels', 'Linen Tea Towels (3)', 2_400, 'Kitchen', 95, 'Stonewashed linen, soft from the first use and absorbent for years.'],
  ['desk-lamp', 'Arc Desk Lamp', 6_900, 'Home', 260, 'Dimmable warm LED on a weighted base. The arm reaches 45 cm over your desk.'],
  ['wool-throw', 'Merino Wool Throw', 9_800, 'Home', 330, 'A 130 × 170 cm throw woven from soft merino in a herringbone pattern.'],
  ['planter', 'Terracotta Planter', 1_950, 'Home', 22, 'Unglazed 18 cm pot with a drainage hole and a matching saucer.'],
  ['candle', 'Cedar & Smoke Candle', 2_200, 'Home', 35, 'Soy wax in a reusable amber jar; burns for about 45 hours.'],
  ['notebook', 'Dot-Grid Notebook', 1_600, 'Stationery', 220, '192 pages of 100 g/m² paper that takes fountain pen ink without bleeding.'],
  ['fountain-pen', 'Steel Fountain Pen', 3_600, 'Stationery', 240, 'A medium nib, a converter and two cartridges of blue-black ink.'],
  ['desk-organiser', 'Oak Desk Organiser', 4_200, 'Stationery', 38, 'Solid oak tray with three compartments for pens, cards and clutter.'],
  ['washi-tape', 'Washi Tape Set (6)', 1_150, 'Stationery', 300, 'Six rolls of Japanese paper tape in muted colours. Tears cleanly by hand.'],
  ['headphones', 'Wireless Headphones', 14_900, 'Audio', 200, 'Over-ear, noise cancelling, 30 hours of battery and a fold-flat case.'],
  ['speaker', 'Pocket Speaker', 4_900, 'Audio', 170, 'Splash-proof Bluetooth speaker with a surprisingly full sound.'],
  ['turntable', 'Belt-Drive Turntable', 24_900, 'Audio', 10, 'A two-speed turntable with a built-in preamp and a dust cover.'],
  ['earbuds', 'Everyday Earbuds', 5_900, 'Audio', 185, 'Light in-ear buds with a charging case that fits in a coin pocket.'],
  ['yoga-mat', 'Cork Yoga Mat', 6_400, 'Wellness', 30, 'Natural cork on a rubber base: grips better the more you sweat.'],
  ['water-bottle', 'Insulated Bottle 750 ml', 2_900, 'Wellness', 190, 'Keeps drinks cold for 24 hours or hot for 12. Leak-proof lid.'],
  ['tea-sampler', 'Loose-Leaf Tea Sampler', 1_850, 'Wellness', 80, 'Eight teas from green sencha to smoky lapsang, 25 g each.'],
  ['foam-roller', 'Textured Foam Roller', 2_650, 'Wellness', 280, 'A firm 33 cm roller for sore calves, backs and everything between.'],
];

export const SEED_PRODUCTS: readonly Product[] = SEEDS.map(([id, name, priceCents, category, hue, description]) => ({
  id, name, priceCents, category, hue, description,
}));
