-- Soft limits and limits that must be set (red team round 2, finding 7):
-- a new patient had the whole hardware range (0.1 to 200 mL/h, 1,000 mL)
-- and could be prescribed up to it with no limits ever set. Soft limits
-- lie inside the hard ones; an order across them is written only with
-- its prescriber's reason (audited as soft_limit_confirmed). A patient's
-- limits are set once a physician or an administrator has set them; no
-- order is written before. Patients who already have an order or whose
-- limits were changed keep working: their limits count as set, with no
-- soft zone (soft equal to hard).
ALTER TABLE limits ADD COLUMN soft_min_rate_ul_h BIGINT NOT NULL DEFAULT 0,
                   ADD COLUMN soft_max_rate_ul_h BIGINT NOT NULL DEFAULT 0,
                   ADD COLUMN soft_max_volume_ul BIGINT NOT NULL DEFAULT 0,
                   ADD COLUMN is_set BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE limits SET soft_min_rate_ul_h = min_rate_ul_h,
                  soft_max_rate_ul_h = max_rate_ul_h,
                  soft_max_volume_ul = max_volume_ul;
UPDATE limits SET is_set = TRUE
 WHERE EXISTS (SELECT 1 FROM prescriptions rx WHERE rx.patient_id = limits.patient_id)
    OR EXISTS (SELECT 1 FROM audit a
                WHERE a.patient_id = limits.patient_id AND a.action = 'limits_changed');
